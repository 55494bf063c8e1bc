/// The rules a new staff password must meet, with a readable reason when it does not.
public struct PasswordPolicy: Sendable {
    /// Fewest characters accepted.
    public var minimumLength: Int

    /// Creates the policy (at least 12 characters by default).
    public init(minimumLength: Int = 12) { self.minimumLength = minimumLength }

    /// Why `password` is refused, or nil if it is acceptable. `user` and `org` are refused as
    /// the heart of a password too.
    public func problem(with password: String, user: String = "", org: String = "") -> String? {
        if password.count < minimumLength {
            return "the password has \(password.count) characters; at least \(minimumLength) are required"
        }
        if Set(password).count < 4 {
            return "the password repeats too few different characters"
        }
        let folded = password.lowercased()
        if CommonPasswords.list.contains(folded) {
            return "the password is on the list of commonly used passwords"
        }
        let core = String(folded.filter(\.isLetter))
        if core.count >= 4, CommonPasswords.words.contains(core) {
            return "the password is a common word with digits or symbols added"
        }
        for name in [user, org] where name.count >= 4 && folded.contains(name.lowercased()) {
            return "the password contains the account or organisation name"
        }
        return nil
    }
}

/// Passwords of 12+ characters that appear at the top of public breach corpora, and the words
/// most of the shorter ones are built from (a word padded with digits to 12 is still refused).
enum CommonPasswords {
    static let list: Set<String> = [
        "123456789012", "1234567890123", "12345678901234", "123456123456", "111111111111", "000000000000",
        "123123123123", "qwertyuiopas", "qwertyuiop123", "qwerty123456", "1q2w3e4r5t6y", "1qaz2wsx3edc",
        "zaq12wsxcde3", "qazwsxedcrfv", "asdfghjkl123", "password1234", "password12345", "password123!",
        "passw0rd1234", "p@ssw0rd1234", "p@ssword1234", "iloveyou1234", "welcome12345", "welcome123!",
        "letmein12345", "changeme1234", "administrator", "administrator1", "admin1234567", "abc123456789",
        "abcdefghijkl", "abcd12345678", "monkey123456", "dragon123456", "football1234", "baseball1234",
        "sunshine1234", "princess1234", "superman1234", "trustno11234", "michael12345", "starwars1234",
        "whatever1234", "mustang12345", "shadow123456", "master123456", "freedom12345", "computer1234",
        "internet1234", "newyork12345", "summer2024!!", "winter2024!!", "spring2025!!", "autumn2025!!",
        "correcthorsebatterystaple", "thequickbrownfox", "passwordpassword", "qwertyqwerty", "asdfasdfasdf",
        "123qweasdzxc", "1234qwerasdf", "qwer1234asdf", "zxcvbnm12345", "hospital1234", "medical12345",
        "nurse1234567", "doctor123456", "clinic123456", "healthcare12", "patient12345",
    ]

    static let words: Set<String> = [
        "password", "passw", "pass", "qwerty", "qwertyuiop", "asdf", "asdfgh", "asdfghjkl", "zxcvbnm", "qwer", "qaz", "wsx",
        "letmein", "welcome", "admin", "administrator", "login", "iloveyou", "monkey", "dragon", "football", "baseball",
        "sunshine", "princess", "superman", "batman", "trustno", "master", "shadow", "freedom", "whatever", "starwars",
        "computer", "internet", "summer", "winter", "spring", "autumn", "changeme", "secret", "default", "hospital",
        "medical", "nurse", "doctor", "clinic", "health", "healthcare", "patient", "abcdef", "abcdefgh", "abcdefghijkl",
    ]
}
