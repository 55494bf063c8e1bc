import Foundation

/// A JSON value as it appeared in a token, key set or discovery document.
public enum JSONValue: Sendable, Hashable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case array([JSONValue])
    case object([String: JSONValue])
    case null

    /// The string, if this is one.
    public var stringValue: String? {
        if case .string(let value) = self { value } else { nil }
    }

    /// The number, if this is one.
    public var numberValue: Double? {
        if case .number(let value) = self { value } else { nil }
    }

    /// The members, if this is an object.
    public var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { value } else { nil }
    }

    /// The elements, if this is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { value } else { nil }
    }

    /// Parses `bytes` as one JSON object of at most `limit` bytes.
    ///
    /// - Throws: ``OIDCError/tooLarge(_:)`` over the limit, ``OIDCError/malformed(_:)`` if the
    ///   bytes are not JSON or the top level is not an object; `what` names the document.
    public static func object(from bytes: some Collection<UInt8>, limit: Int, what: String) throws -> [String: JSONValue] {
        guard bytes.count <= limit else { throw OIDCError.tooLarge("\(what) is over \(limit) bytes") }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch {
            throw OIDCError.malformed("\(what) is not JSON")
        }
        guard case .object(let members) = value else { throw OIDCError.malformed("\(what) is not a JSON object") }
        return members
    }
}

extension JSONValue: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }
}

/// Typed reads of a JSON object's members, each throwing ``OIDCError/malformed(_:)`` when a
/// member is present with the wrong type.
extension [String: JSONValue] {
    func string(_ name: String) throws -> String? {
        switch self[name] {
        case nil, .null?: return nil
        case .string(let value)?: return value
        default: throw OIDCError.malformed("\(name) is not a string")
        }
    }

    func strings(_ name: String) throws -> [String]? {
        switch self[name] {
        case nil, .null?: return nil
        case .string(let value)?: return [value]
        case .array(let elements)?:
            return try elements.map {
                guard case .string(let value) = $0 else { throw OIDCError.malformed("\(name) is not an array of strings") }
                return value
            }
        default: throw OIDCError.malformed("\(name) is not a string or an array of strings")
        }
    }

    func number(_ name: String) throws -> Double? {
        switch self[name] {
        case nil, .null?: return nil
        case .number(let value)? where value.isFinite: return value
        default: throw OIDCError.malformed("\(name) is not a number")
        }
    }

    func bool(_ name: String) throws -> Bool? {
        switch self[name] {
        case nil, .null?: return nil
        case .bool(let value)?: return value
        default: throw OIDCError.malformed("\(name) is not a boolean")
        }
    }

    func object(_ name: String) throws -> [String: JSONValue]? {
        switch self[name] {
        case nil, .null?: return nil
        case .object(let value)?: return value
        default: throw OIDCError.malformed("\(name) is not an object")
        }
    }
}
