/// A value bound to a `$n` parameter of a statement, or read back from a column with
/// ``PostgresRow/value(_:)``.
///
/// Text, integers, doubles and booleans travel in PostgreSQL's text format; `bytea` travels in
/// binary format, so every byte value arrives as it was sent. Text is sent with no declared type,
/// so the server infers it from the statement (`$1` against a `jsonb` column is `jsonb`); the
/// others declare theirs (`int8`, `float8`, `bool`, `bytea`).
public enum PostgresValue: Sendable, Hashable {
    /// A string; PostgreSQL text cannot hold NUL, so a string containing one is refused before
    /// it is sent (``PostgresError/nulInText(parameter:)``).
    case text(String)
    /// Raw bytes for a `bytea` column.
    case bytea([UInt8])
    /// A 64-bit integer (`int8`; the server converts it to `int2`/`int4` columns on assignment).
    case int(Int64)
    /// A double (`float8`); NaN and the infinities are sent as PostgreSQL spells them.
    case double(Double)
    /// A boolean.
    case bool(Bool)
    /// SQL NULL.
    case null
}

extension PostgresValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByNilLiteral
{
    /// A text value from a literal.
    public init(stringLiteral value: String) { self = .text(value) }
    /// An `int8` value from a literal.
    public init(integerLiteral value: Int64) { self = .int(value) }
    /// A `float8` value from a literal.
    public init(floatLiteral value: Double) { self = .double(value) }
    /// A `bool` value from a literal.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// NULL.
    public init(nilLiteral: ()) { self = .null }
}

/// PostgreSQL type OIDs the client sends or decodes (`pg_type.oid`, fixed since 8.x).
enum PostgresType {
    static let unspecified: UInt32 = 0
    static let bool: UInt32 = 16
    static let bytea: UInt32 = 17
    static let int8: UInt32 = 20
    static let int2: UInt32 = 21
    static let int4: UInt32 = 23
    static let oid: UInt32 = 26
    static let float4: UInt32 = 700
    static let float8: UInt32 = 701
    static let numeric: UInt32 = 1700

    static let integers: Set<UInt32> = [int2, int4, int8, oid]
    static let floats: Set<UInt32> = [float4, float8, numeric]
}

extension PostgresValue {
    /// The wire form of this parameter: declared type, bytes (nil for NULL) and format (0 text, 1 binary).
    var wire: (type: UInt32, bytes: [UInt8]?, format: Int32) {
        switch self {
        case .text(let string): (PostgresType.unspecified, Array(string.utf8), 0)
        case .bytea(let bytes): (PostgresType.bytea, bytes, 1)
        case .int(let int): (PostgresType.int8, Array(String(int).utf8), 0)
        case .double(let double): (PostgresType.float8, Array(Self.text(of: double).utf8), 0)
        case .bool(let bool): (PostgresType.bool, bool ? [UInt8(ascii: "t")] : [UInt8(ascii: "f")], 0)
        case .null: (PostgresType.unspecified, nil, 0)
        }
    }

    private static func text(of double: Double) -> String {
        if double.isNaN { return "NaN" }
        if double.isInfinite { return double < 0 ? "-Infinity" : "Infinity" }
        // Swift's description is the shortest text that reads back as the same double.
        return "\(double)"
    }
}
