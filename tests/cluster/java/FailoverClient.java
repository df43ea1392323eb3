// The Apache ZooKeeper Java client through a leader failover. Connects to the
// servers of args[0] in the given order (no shuffling, so the test knows the
// first one is the leader), with a session timeout of args[1] ms; creates an
// ephemeral and some sequential znodes, prints "READY <client state>", then
// keeps creating sequential znodes while the test kills the leader. It stops
// once it has seen the connection lost and 50 creates succeed after that (or
// after 60 s), checks its ephemeral and its acknowledged znodes, and prints
//   SUMMARY session=same|changed connloss=N disconnected=N expired=N
//           ok_after_loss=N acked=N lost=N ephemeral=own|missing|other id=<hex>
// and closes the session when a line (or the end) comes on stdin.
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.client.HostProvider;
import org.apache.zookeeper.data.Stat;

public class FailoverClient {
    /** The servers in the order given, round robin. */
    static final class InOrder implements HostProvider {
        private final List<InetSocketAddress> servers = new ArrayList<>();
        private int next = 0;
        private int tried = 0;

        InOrder(String connectString) {
            for (String hp : connectString.split(",")) {
                int colon = hp.lastIndexOf(':');
                servers.add(InetSocketAddress.createUnresolved(hp.substring(0, colon), Integer.parseInt(hp.substring(colon + 1))));
            }
        }

        public int size() {
            return servers.size();
        }

        public InetSocketAddress next(long spinDelay) {
            if (tried >= servers.size() && spinDelay > 0) {
                try {
                    Thread.sleep(spinDelay);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                tried = 0;
            }
            InetSocketAddress a = servers.get(next);
            next = (next + 1) % servers.size();
            tried++;
            return new InetSocketAddress(a.getHostString(), a.getPort());
        }

        public void onConnected() {
            tried = 0;
        }

        public boolean updateServerList(Collection<InetSocketAddress> s, InetSocketAddress current) {
            return false;
        }
    }

    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        int timeout = Integer.parseInt(args[1]);
        CountDownLatch connected = new CountDownLatch(1);
        AtomicInteger disconnected = new AtomicInteger();
        AtomicInteger expired = new AtomicInteger();
        Watcher watcher = e -> {
            switch (e.getState()) {
                case SyncConnected:
                    connected.countDown();
                    break;
                case Disconnected:
                    disconnected.incrementAndGet();
                    break;
                case Expired:
                    expired.incrementAndGet();
                    break;
                default:
                    break;
            }
        };
        ZooKeeper zk = new ZooKeeper(hosts, timeout, watcher, false, new InOrder(hosts));
        if (!connected.await(20, TimeUnit.SECONDS)) {
            System.out.println("FAIL connect");
            System.exit(1);
        }
        long session = zk.getSessionId();
        byte[] none = new byte[0];
        zk.create("/java", none, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.create("/java/eph", none, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        List<String> acked = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            acked.add(zk.create("/java/seq-", none, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL));
        }
        System.out.println("READY " + zk);
        System.out.flush();

        int connLoss = 0;
        int okAfterLoss = 0;
        int sessionExpired = 0;
        List<String> other = new ArrayList<>();
        long deadline = System.currentTimeMillis() + 60000;
        while (System.currentTimeMillis() < deadline && okAfterLoss < 50) {
            boolean lossSeen = connLoss > 0 || disconnected.get() > 0;
            try {
                acked.add(zk.create("/java/seq-", none, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL));
                if (lossSeen) {
                    okAfterLoss++;
                }
            } catch (KeeperException.ConnectionLossException e) {
                connLoss++;
                Thread.sleep(50);
            } catch (KeeperException.SessionExpiredException e) {
                sessionExpired++;
                break;
            } catch (KeeperException e) {
                other.add(e.code().toString());
                Thread.sleep(50);
            }
            if (!lossSeen) {
                Thread.sleep(20);
            }
        }
        String eph = "missing";
        Set<String> children = new HashSet<>();
        int lost = -1;
        if (sessionExpired == 0 && expired.get() == 0) {
            Stat st = zk.exists("/java/eph", false);
            if (st != null) {
                eph = st.getEphemeralOwner() == session ? "own" : "other";
            }
            for (String c : zk.getChildren("/java", false)) {
                children.add("/java/" + c);
            }
            lost = 0;
            for (String p : acked) {
                if (!children.contains(p)) {
                    lost++;
                }
            }
        }
        if (!other.isEmpty()) {
            System.out.println("OTHER ERRORS " + other);
        }
        System.out.println("SUMMARY session=" + (zk.getSessionId() == session ? "same" : "changed")
                + " connloss=" + connLoss + " disconnected=" + disconnected.get()
                + " expired=" + (sessionExpired + expired.get()) + " ok_after_loss=" + okAfterLoss
                + " acked=" + acked.size() + " lost=" + lost + " ephemeral=" + eph
                + " id=" + Long.toHexString(session));
        System.out.flush();
        // The test checks the survivors while the session lives; a line on
        // stdin (or its end) closes it.
        new java.io.BufferedReader(new java.io.InputStreamReader(System.in)).readLine();
        zk.close();
        System.out.println("CLOSED");
    }
}
