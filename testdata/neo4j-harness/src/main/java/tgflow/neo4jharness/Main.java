package tgflow.neo4jharness;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import java.time.Duration;

import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.harness.Neo4j;
import org.neo4j.harness.Neo4jBuilders;

/**
 * Starts a throwaway in-process Neo4j (Community, auth disabled, plain Bolt on loopback)
 * for tgflow's Go tests and keeps it running until the JVM is terminated.
 *
 * <pre>
 * java -cp 'target/classes:CLASSPATH' tgflow.neo4jharness.Main [PORT [WORKDIR]]
 * </pre>
 *
 * <ul>
 *   <li>PORT: Bolt port on 127.0.0.1 (argument 1, else $TGFLOW_NEO4J_PORT, else 0 = any free port).
 *   <li>WORKDIR: where the store and logs go (argument 2, else $TGFLOW_NEO4J_WORKDIR, else a temp
 *       dir). The caller deletes it.
 *   <li>$TGFLOW_NEO4J_PARENT_PID: if set, the harness exits when that process is gone (so a
 *       SIGKILLed test script does not leave Neo4j running).
 *   <li>$TGFLOW_NEO4J_EXIT_ON_STDIN_EOF=1: also exit when stdin reaches end of file.
 * </ul>
 *
 * Once Bolt accepts connections it prints exactly one line {@code READY bolt://127.0.0.1:PORT}
 * on stdout. SIGTERM/SIGINT shut the database down cleanly (shutdown hook).
 */
public final class Main {
    private Main() {}

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(firstNonEmpty(arg(args, 0), System.getenv("TGFLOW_NEO4J_PORT"), "0"));
        String dir = firstNonEmpty(arg(args, 1), System.getenv("TGFLOW_NEO4J_WORKDIR"), null);
        Path workDir = dir != null ? Paths.get(dir) : Files.createTempDirectory("tgflow-neo4j-");
        Files.createDirectories(workDir);

        long start = System.nanoTime();
        Neo4j neo4j = Neo4jBuilders.newInProcessBuilder(workDir)
                .withDisabledServer() // no HTTP/HTTPS server, Bolt only
                .withConfig(HttpConnector.enabled, false)
                .withConfig(HttpsConnector.enabled, false)
                .withConfig(BoltConnector.enabled, true)
                .withConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .withConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                .withConfig(GraphDatabaseSettings.auth_enabled, false)
                .withConfig(GraphDatabaseSettings.pagecache_memory, 64L * 1024 * 1024)
                // No usage reports to the outside (there is no network beyond loopback anyway).
                .withConfig(GraphDatabaseInternalSettings.udc_network_enabled, false)
                // Netty's default graceful shutdown waits ~10 s; this store is throwaway.
                .withConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
                .withConfig(GraphDatabaseInternalSettings.netty_server_shutdown_timeout, Duration.ofSeconds(1))
                .build();

        CountDownLatch stop = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("neo4j-harness: shutting down");
            stop.countDown();
            neo4j.close();
        }, "neo4j-harness-shutdown"));

        URI bolt = neo4j.boltURI();
        System.out.printf("neo4j-harness: started in %d ms, store in %s%n",
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start), workDir);
        System.out.println("READY bolt://127.0.0.1:" + bolt.getPort());
        System.out.flush();

        watchParent(System.getenv("TGFLOW_NEO4J_PARENT_PID"));
        if ("1".equals(System.getenv("TGFLOW_NEO4J_EXIT_ON_STDIN_EOF"))) {
            daemon("neo4j-harness-stdin", () -> {
                try (InputStream in = System.in) {
                    while (in.read() != -1) {
                        // discard
                    }
                } catch (IOException ignored) {
                    // treat as EOF
                }
                System.out.println("neo4j-harness: stdin closed");
                System.exit(0);
            });
        }
        stop.await();
    }

    private static void watchParent(String pid) {
        if (pid == null || pid.isBlank()) {
            return;
        }
        Path proc = Paths.get("/proc", pid.trim());
        daemon("neo4j-harness-parent-watch", () -> {
            while (Files.exists(proc)) {
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException e) {
                    return;
                }
            }
            System.out.println("neo4j-harness: parent process " + pid.trim() + " is gone");
            System.exit(0);
        });
    }

    private static void daemon(String name, Runnable r) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        t.start();
    }

    private static String arg(String[] args, int i) {
        return args.length > i ? args[i] : null;
    }

    private static String firstNonEmpty(String a, String b, String c) {
        if (a != null && !a.isBlank()) {
            return a.trim();
        }
        if (b != null && !b.isBlank()) {
            return b.trim();
        }
        return c;
    }
}
