package harness;

import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One real single-node OpenSearch for the test harness (tests/harness/opensearch.py).
 * Arguments: HOME HOST HTTP_PORT TRANSPORT_PORT. HOME holds plugins/ (job-scheduler and
 * index-management, each loaded with its own class loader as in a distribution), config/,
 * data/ and logs/. The modules netty4, analysis-common, painless and mustache are on the
 * classpath. No Bootstrap: no security manager, no bootstrap checks, plain HTTP.
 */
public final class HarnessNode {
    private static final String[] CLASSPATH_PLUGINS = {
        "org.opensearch.transport.Netty4Plugin",
        "org.opensearch.analysis.common.CommonAnalysisPlugin",
        "org.opensearch.painless.PainlessPlugin",
        "org.opensearch.script.mustache.MustachePlugin",
    };

    private static final class ClasspathNode extends Node {
        ClasspathNode(Environment env, List<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }
    }

    private HarnessNode() {}

    @SuppressWarnings("unchecked")
    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: HarnessNode HOME HOST HTTP_PORT TRANSPORT_PORT");
            System.exit(2);
        }
        long t0 = System.currentTimeMillis();
        Path home = Paths.get(args[0]).toAbsolutePath();
        Settings settings = Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("cluster.name", "rollup-harness")
            .put("node.name", "harness-0")
            .put("network.host", args[1])
            .put("http.port", args[2])
            .put("transport.port", args[3])
            .put("discovery.type", "single-node")
            .put("action.auto_create_index", "true")
            .build();
        Environment env = InternalSettingsPreparer.prepareEnvironment(
            settings, Collections.emptyMap(), home.resolve("config"), () -> "harness-0");
        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName("harness-0");
        LogConfigurator.configure(env);
        List<Class<? extends Plugin>> plugins = new ArrayList<>();
        for (String name : CLASSPATH_PLUGINS) {
            plugins.add((Class<? extends Plugin>) Class.forName(name));
        }
        Node node = new ClasspathNode(env, plugins).start();
        System.out.println("HARNESS_NODE_STARTED_MS=" + (System.currentTimeMillis() - t0));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            }
        }));
        Thread.currentThread().join();
    }
}
