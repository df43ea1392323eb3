// The newer parts of the ZooKeeper 3.6+ client API through the real Java
// client: persistent recursive watches, multiRead, getEphemerals,
// containers (removed by the server once emptied) and TTL nodes.
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class ApiSmoke {
    static final byte[] EMPTY = new byte[0];

    public static void main(String[] args) throws Exception {
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(args[0], 10000, e -> {
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected) {
                connected.countDown();
            }
        });
        if (!connected.await(15, TimeUnit.SECONDS)) {
            System.out.println("FAIL connect");
            System.exit(1);
        }
        LinkedBlockingQueue<String> events = new LinkedBlockingQueue<>();
        zk.create("/tree", EMPTY, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.addWatch("/tree", e -> events.add(e.getType() + " " + e.getPath()), AddWatchMode.PERSISTENT_RECURSIVE);
        zk.create("/tree/a", EMPTY, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.create("/tree/a/b", EMPTY, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.setData("/tree/a/b", "x".getBytes(StandardCharsets.UTF_8), -1);
        zk.delete("/tree/a/b", -1);
        for (int i = 0; i < 4; i++) {
            System.out.println("recursive " + events.poll(5, TimeUnit.SECONDS));
        }
        zk.removeAllWatches("/tree", Watcher.WatcherType.Any, false);
        zk.create("/tree/c", EMPTY, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        System.out.println("after remove " + events.poll(500, TimeUnit.MILLISECONDS));

        List<OpResult> reads = zk.multi(List.of(Op.getData("/tree/a"), Op.getChildren("/tree"), Op.getData("/nope")));
        List<String> shown = new ArrayList<>();
        for (OpResult r : reads) {
            if (r instanceof OpResult.GetDataResult) {
                shown.add("data:" + ((OpResult.GetDataResult) r).getStat().getVersion());
            } else if (r instanceof OpResult.GetChildrenResult) {
                List<String> c = new ArrayList<>(((OpResult.GetChildrenResult) r).getChildren());
                Collections.sort(c);
                shown.add("children:" + c);
            } else {
                shown.add("error:" + ((OpResult.ErrorResult) r).getErr());
            }
        }
        System.out.println("multiRead " + shown);

        zk.create("/tree/e1", EMPTY, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        zk.create("/tree/a/e2", EMPTY, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        List<String> all = zk.getEphemerals();
        Collections.sort(all);
        List<String> under = zk.getEphemerals("/tree/a");
        System.out.println("ephemerals " + all + " under /tree/a " + under);

        zk.create("/box", EMPTY, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER);
        zk.create("/box/item", EMPTY, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        Stat box = zk.exists("/box", false);
        System.out.println("container owner " + Long.toHexString(box.getEphemeralOwner()));
        zk.delete("/box/item", -1);
        long deadline = System.currentTimeMillis() + 10000;
        while (zk.exists("/box", false) != null && System.currentTimeMillis() < deadline) {
            Thread.sleep(100);
        }
        System.out.println("container removed " + (zk.exists("/box", false) == null));

        Stat ttlStat = new Stat();
        zk.create("/ttl", EMPTY, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_WITH_TTL, ttlStat, 500);
        System.out.println("ttl owner " + Long.toHexString(ttlStat.getEphemeralOwner()));
        deadline = System.currentTimeMillis() + 10000;
        while (zk.exists("/ttl", false) != null && System.currentTimeMillis() < deadline) {
            Thread.sleep(100);
        }
        System.out.println("ttl removed " + (zk.exists("/ttl", false) == null));
        try {
            zk.create("/ttl2", EMPTY, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_WITH_TTL, new Stat(), 0);
        } catch (KeeperException e) {
            System.out.println("ttl 0 " + e.code());
        } catch (IllegalArgumentException e) {
            System.out.println("ttl 0 refused by client");
        }
        zk.close();
        System.out.println("DONE");
    }
}
