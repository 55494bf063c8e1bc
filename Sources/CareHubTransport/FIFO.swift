/// A first-in, first-out queue over an array: taking the first element moves an index rather than
/// the elements behind it, and the storage is emptied (its capacity kept) once the last is taken.
struct FIFO<Element> {
    private var elements: [Element?] = []
    private var head = 0

    var isEmpty: Bool { head == elements.count }
    var count: Int { elements.count - head }
    /// The element ``removeFirst()`` takes next.
    var first: Element? { isEmpty ? nil : elements[head] }

    mutating func append(_ element: Element) { elements.append(element) }

    /// Takes the first element; the queue must not be empty.
    mutating func removeFirst() -> Element {
        let element = elements[head].take()!
        head += 1
        if head == elements.count {
            elements.removeAll(keepingCapacity: true)
            head = 0
        }
        return element
    }

    mutating func removeAll() {
        elements = []
        head = 0
    }
}
