// Drives the real Apache ZooKeeper Java client against a server and prints
// one line per check; the pytest wrapper runs it against both servers.
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class ClientSmoke {
    public static void main(String[] args) throws Exception {
        CountDownLatch connected = new CountDownLatch(1);
        LinkedBlockingQueue<String> events = new LinkedBlockingQueue<>();
        ZooKeeper zk = new ZooKeeper(args[0], 10000, e -> {
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected && e.getType() == Watcher.Event.EventType.None) {
                connected.countDown();
            }
        });
        if (!connected.await(15, TimeUnit.SECONDS)) {
            System.out.println("FAIL connect");
            System.exit(1);
        }
        Watcher w = e -> events.add(e.getType() + " " + e.getPath());
        System.out.println("create " + zk.create("/j", "v0".getBytes(StandardCharsets.UTF_8), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
        Stat st = new Stat();
        byte[] d = zk.getData("/j", w, st);
        System.out.println("get " + new String(d, StandardCharsets.UTF_8) + " version=" + st.getVersion() + " len=" + st.getDataLength());
        zk.setData("/j", "v1".getBytes(StandardCharsets.UTF_8), 0);
        System.out.println("event " + events.poll(5, TimeUnit.SECONDS));
        System.out.println("seq " + zk.create("/j/s-", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL_SEQUENTIAL));
        Stat cst = new Stat();
        zk.create("/j/c", new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT, cst);
        System.out.println("create2 version=" + cst.getVersion() + " cversion=" + cst.getCversion() + " czxid==mzxid " + (cst.getCzxid() == cst.getMzxid()));
        List<String> kids = zk.getChildren("/j", w);
        Collections.sort(kids);
        System.out.println("children " + kids);
        zk.delete("/j/c", -1);
        System.out.println("event " + events.poll(5, TimeUnit.SECONDS));
        System.out.println("exists missing " + zk.exists("/j/none", w));
        zk.create("/j/none", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        System.out.println("event " + events.poll(5, TimeUnit.SECONDS));
        List<Op> ops = new ArrayList<>();
        ops.add(Op.create("/j/m", new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
        ops.add(Op.check("/j", 7));
        try {
            zk.multi(ops);
            System.out.println("multi unexpectedly ok");
        } catch (KeeperException e) {
            List<String> rs = new ArrayList<>();
            for (OpResult r : e.getResults()) {
                rs.add(r instanceof OpResult.ErrorResult ? "err" + ((OpResult.ErrorResult) r).getErr() : r.getClass().getSimpleName());
            }
            System.out.println("multi failed " + e.code() + " " + rs);
        }
        List<OpResult> ok = zk.multi(List.of(Op.create("/j/m", new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT), Op.setData("/j/m", "x".getBytes(StandardCharsets.UTF_8), 0), Op.delete("/j/m", 1)));
        System.out.println("multi ok " + ok.size());
        try {
            zk.setData("/j", new byte[0], 42);
        } catch (KeeperException e) {
            System.out.println("setData " + e.code());
        }
        zk.addAuthInfo("digest", "joe:pw".getBytes(StandardCharsets.UTF_8));
        zk.create("/j/acl", new byte[0], ZooDefs.Ids.CREATOR_ALL_ACL, CreateMode.PERSISTENT);
        System.out.println("acl " + zk.getACL("/j/acl", new Stat()));
        zk.sync("/j", (rc, path, ctx) -> System.out.println("sync rc=" + rc + " path=" + path), null);
        Thread.sleep(300);
        zk.close();
        System.out.println("DONE");
    }
}
