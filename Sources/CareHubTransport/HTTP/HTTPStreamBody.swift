/// A response body produced chunk by chunk while it is written, for bodies too large to hold
/// (an attachment read from storage).
///
/// The transport sends `Content-Length: length`, then calls `next` for a chunk only once the
/// previous one has been written, so a slow client holds at most a chunk or two in memory.
/// `next` runs in a task, never on the service thread; it returns nil at the end. It is not
/// called again once `length` bytes have come. If it throws, returns nil early, or returns more
/// than `length` bytes in all, the connection is closed at once: the client sees a short body,
/// never a wrong one.
///
/// ```swift
/// let reader = try await attachments.open(id)   // an actor that reads 64 KiB at a time
/// return HTTPResponse(headers: ["Content-Type": "application/pdf"],
///                     body: .stream(HTTPStreamBody(length: reader.size) { try await reader.next() }))
/// ```
public struct HTTPStreamBody: Sendable {
    /// The body's length in bytes, sent as `Content-Length`.
    public let length: Int
    /// The next chunk (any size), or nil after the last.
    public let next: @Sendable () async throws -> [UInt8]?

    /// A body of `length` bytes that `next` yields chunk by chunk.
    public init(length: Int, next: @escaping @Sendable () async throws -> [UInt8]?) {
        self.length = length
        self.next = next
    }
}
