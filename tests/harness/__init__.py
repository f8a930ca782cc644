"""The test harness: real servers on 127.0.0.1 (WebDAV servers, `swan up`, jupyter-server, the
Docker engine, a browser) and the fixtures that share them, remembering a failed start so that
its dependents fail at once with the first error. It holds no test's assertions."""
