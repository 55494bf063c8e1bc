/// String fields of a frame the server wrote, found without parsing the whole frame.
///
/// The hub and the relay write compact JSON (`"key":"value"`), so a top-level string field is
/// the bytes after `"key":"` up to the next quote. That pattern cannot occur inside a string
/// value, where every quote is escaped. A value with an escape in it reads as absent, which
/// the load's fields never have: ids, codes, frame types and `bench <nanoseconds>`.
struct FrameFields {
    /// A field name, as the bytes that open its value.
    struct Key: Sendable {
        let opening: [UInt8]

        init(_ name: String) {
            opening = Array("\"\(name)\":\"".utf8)
        }

        static let type = Key("type")
        static let id = Key("id")
        static let text = Key("text")
        static let code = Key("code")
    }

    private let text: String

    init(_ text: String) {
        var text = text
        text.makeContiguousUTF8()  // a no-op for the transport's strings; the scan needs it
        self.text = text
    }

    subscript(key: Key) -> String? {
        text.utf8.withContiguousStorageIfAvailable { bytes -> String? in
            let opening = key.opening
            guard bytes.count > opening.count else { return nil }
            var start = 0
            while start + opening.count <= bytes.count {
                guard let quote = bytes[start...].firstIndex(of: opening[0]) else { return nil }
                guard quote + opening.count <= bytes.count else { return nil }
                if bytes[quote..<quote + opening.count].elementsEqual(opening) {
                    let valueStart = quote + opening.count
                    var end = valueStart
                    while end < bytes.count && bytes[end] != UInt8(ascii: "\"") {
                        if bytes[end] == UInt8(ascii: "\\") { return nil }
                        end += 1
                    }
                    guard end < bytes.count else { return nil }
                    return String(decoding: UnsafeBufferPointer(rebasing: bytes[valueStart..<end]), as: UTF8.self)
                }
                start = quote + 1
            }
            return nil
        } ?? nil
    }
}
