extension WebSocketServer.Configuration {
    /// The routes, then the text routes (content type `text/plain; version=0.0.4`, Prometheus'
    /// text format), then the files of `resolvedStaticRoot` for any other GET or HEAD.
    func router(resolvedStaticRoot: String?) -> HTTPRouter {
        var router = routes
        for (path, render) in textRoutes {
            router.get(path) { _ in .text(render(), contentType: "text/plain; version=0.0.4; charset=utf-8") }
        }
        if let resolvedStaticRoot {
            let files = StaticFiles(root: resolvedStaticRoot)
            router.fallback = { files.respond(to: $0) }
        }
        return router
    }
}
