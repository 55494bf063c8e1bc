import CLibWebSockets
import Foundation

/// Streamed HTTP bodies: request bodies handed to a running handler as they arrive, with
/// back-pressure on the socket, and response bodies pulled from a producer chunk by chunk.
///
/// A request body goes into the exchange's ``HTTPBodyBuffer``. Past
/// ``HTTPBodyBuffer/pauseBytes`` held for a handler that is behind, the HTTP/1 socket is no
/// longer read (`lws_rx_flow_control`, on this thread) until the handler's taking brings it under
/// ``HTTPBodyBuffer/resumeBytes`` and a ``ServiceLoop/Command/resumeBody(_:)`` comes back.
/// libwebsockets 4.1 cannot hold back an HTTP/2 stream (it ignores rx flow control there and
/// returns the peer's window as it reads), so an HTTP/2 body is held up to the route's limit.
extension ServiceLoop {
    // MARK: Request bodies

    /// Gives the exchange of a route that streams its body a buffer for the handler to read.
    func startBodyStream(_ exchange: HTTPExchange, expectsBody: Bool) {
        let id = exchange.id
        exchange.bodyBuffer = HTTPBodyBuffer(metrics: bodyMetrics) { [self] in enqueue(.resumeBody(id)) }
        if !expectsBody { streamedBodyCompleted(exchange) }
    }

    func streamedBodyArrived(_ exchange: HTTPExchange, _ input: UnsafeMutableRawPointer?, _ length: Int) -> Int32 {
        // Answered already: the rest is not the handler's, and the connection closes after the answer.
        guard let buffer = exchange.bodyBuffer, !exchange.closesAfterAnswer, let route = exchange.route else { return 0 }
        exchange.bodyBytes += length
        if exchange.bodyBytes > route.maxBodyBytes {
            buffer.finish(.tooLarge)
            forget(exchange)
            return exchange.http2 ? -1 : answerAndClose(exchange.wsi, bodyTooLarge(route, path: exchange.request.path))
        }
        guard let input, length > 0 else { return 0 }
        returnWindow(exchange, length)
        let pauses = buffer.append(Array(UnsafeRawBufferPointer(start: input, count: length)))
        if pauses && !exchange.http2 {
            // Applied by libwebsockets when this callback returns; what it has read stays queued.
            _ = lws_rx_flow_control(exchange.wsi, 0)
            exchange.receiving = false
            bodyMetrics.pauses.add(1, ordering: .relaxed)
        }
        exchange.lastProgress = .now
        armIdleTimeout(exchange)
        return 0
    }

    func streamedBodyCompleted(_ exchange: HTTPExchange) {
        exchange.bodyComplete = true
        exchange.bodyBuffer?.finish(nil)
    }

    /// The connection went before the body was whole: by the idle timeout, or the client's doing.
    func streamedBodyCut(_ exchange: HTTPExchange) {
        let stalled = ContinuousClock.now - exchange.lastProgress >= .seconds(configuration.httpLimits.idleSeconds) - .milliseconds(500)
        exchange.bodyBuffer?.finish(stalled ? .timedOut : .disconnected)
    }

    /// The handler has taken its body down: read the socket again.
    func httpResumeBody(_ id: UInt64) {
        guard let exchange = httpExchanges[id], !exchange.receiving, !exchange.closesAfterAnswer else { return }
        exchange.receiving = true
        _ = lws_rx_flow_control(exchange.wsi, 1)
    }

    /// The handler has answered. A socket paused for its body is read again: libwebsockets 4.1
    /// services no writes for an HTTP/1 connection it is not reading. An answer before the whole
    /// body has arrived drops what is held, and what comes while the answer is written; the
    /// connection closes once the answer is out, and the rest of the body is never read.
    func streamedBodyAnswered(_ exchange: HTTPExchange) {
        if !exchange.receiving {
            exchange.receiving = true
            _ = lws_rx_flow_control(exchange.wsi, 1)
        }
        guard !exchange.bodyComplete else { return }
        exchange.closesAfterAnswer = true
        exchange.bodyBuffer?.abandon()
    }

    // MARK: Response bodies

    /// One piece of a streamed response: up to ``httpChunkBytes`` of the chunk at hand, or a
    /// request for the next chunk once it is written.
    func writeStreamed(_ exchange: HTTPExchange, _ stream: HTTPStreamBody) -> Int32 {
        guard !exchange.streamFailed else { return -1 }
        guard exchange.chunkOffset < exchange.chunk.count else {
            if !exchange.pulling { pull(exchange, stream) }
            return 0
        }
        let wsi = exchange.wsi
        var length = min(Self.httpChunkBytes, exchange.chunk.count - exchange.chunkOffset)
        let allowance = Int(lws_get_peer_write_allowance(wsi))
        if allowance >= 0 { length = min(length, allowance) }
        guard length > 0 else {
            lws_callback_on_writable(wsi)
            return 0
        }
        let last = exchange.offset + length == stream.length
        let written: Int32 = httpScratch.withUnsafeMutableBytes { buffer in
            let payload = buffer.baseAddress! + Self.pre
            exchange.chunk.withUnsafeBytes { source in
                payload.copyMemory(from: source.baseAddress! + exchange.chunkOffset, byteCount: length)
            }
            return Int32(lws_write(wsi, payload.assumingMemoryBound(to: UInt8.self), length, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP))
        }
        guard written >= 0 else { return -1 }
        exchange.offset += length
        exchange.chunkOffset += length
        armIdleTimeout(exchange)
        if last { return finish(exchange) }
        if exchange.chunkOffset < exchange.chunk.count {
            lws_callback_on_writable(wsi)
        } else {
            exchange.chunk = []
            exchange.chunkOffset = 0
            pull(exchange, stream)
        }
        return 0
    }

    /// Asks the producer for its next chunk in a task; the answer comes back as a
    /// ``ServiceLoop/Command/responseChunk(_:_:)``.
    private func pull(_ exchange: HTTPExchange, _ stream: HTTPStreamBody) {
        exchange.pulling = true
        let id = exchange.id
        Task { [self] in
            let pulled: HTTPExchange.Pull
            do {
                pulled = try await stream.next().map { .bytes($0) } ?? .end
            } catch {
                pulled = .failed
            }
            enqueue(.responseChunk(id, pulled))
        }
    }

    /// The producer's next chunk, on the service thread. A chunk past the declared length, an
    /// end short of it, or a failure closes the connection at the next write.
    func httpResponseChunk(_ id: UInt64, _ pulled: HTTPExchange.Pull) {
        guard let exchange = httpExchanges[id], case .writing(let response) = exchange.state,
              case .stream(let stream) = response.body else { return }
        exchange.pulling = false
        switch pulled {
        case .bytes(let bytes) where bytes.isEmpty:
            pull(exchange, stream)
            return
        case .bytes(let bytes) where exchange.offset + bytes.count <= stream.length:
            exchange.chunk = bytes
            exchange.chunkOffset = 0
        case .bytes, .end, .failed:
            exchange.streamFailed = true
        }
        lws_callback_on_writable(exchange.wsi)
    }
}
