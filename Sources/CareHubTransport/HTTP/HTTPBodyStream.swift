/// A request body read while it arrives: its chunks in order, for a route that
/// ``HTTPRoute/streamsBody``.
///
/// ```swift
/// router.add(HTTPRoute(.post, "/attachments", maxBodyBytes: 50 << 20, streamsBody: true) { request in
///     var received = 0
///     do {
///         for try await chunk in request.bodyStream! { received += chunk.count }
///     } catch {
///         return .error(400, "upload incomplete: \(error)")
///     }
///     return .text("\(received) bytes")
/// })
/// ```
///
/// The transport holds about 256 KiB of a body the handler has not taken; past that it stops
/// reading the client's socket (HTTP/1.1) until the handler has taken it down below 64 KiB. Iteration throws ``HTTPBodyError`` after the
/// chunks that did arrive when the client goes away, the body passes the route's limit, or it
/// stalls past ``HTTPLimits/idleSeconds``. Read it from one task at a time.
public struct HTTPBodyStream: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    public typealias Failure = HTTPBodyError

    let buffer: HTTPBodyBuffer

    init(buffer: HTTPBodyBuffer) { self.buffer = buffer }

    /// Yields the body's chunks, then nil; or throws why the body ended short.
    public struct AsyncIterator: AsyncIteratorProtocol, Sendable {
        let buffer: HTTPBodyBuffer

        /// The next chunk; nil once the whole body has been read.
        public mutating func next() async throws(HTTPBodyError) -> [UInt8]? {
            try await buffer.take().get()
        }

        /// The next chunk; nil once the whole body has been read.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(HTTPBodyError) -> [UInt8]? {
            try await buffer.take().get()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(buffer: buffer) }
}
