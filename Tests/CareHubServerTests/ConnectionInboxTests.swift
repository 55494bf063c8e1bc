@testable import CareHubServer
import CareHubTransport
import Synchronization
import Testing

@Suite("connection inbox")
struct ConnectionInboxTests {
    /// What the handler saw: frames in order, and how many ran at once at most.
    final class Log: Sendable {
        struct State {
            var frames: [Int] = []
            var running = 0
            var mostAtOnce = 0
            var finishedAfter: Int?
        }
        let state = Mutex(State())
    }

    func inbox(_ log: Log) -> ConnectionInbox {
        ConnectionInbox(
            handler: { item in
                guard case .oversized(let number) = item else {
                    Issue.record("the test pushes only numbered items, got \(item)")
                    return
                }
                log.state.withLock { state in
                    state.running += 1
                    state.mostAtOnce = max(state.mostAtOnce, state.running)
                }
                await Task.yield()
                log.state.withLock { state in
                    state.frames.append(number)
                    state.running -= 1
                }
            },
            finisher: { log.state.withLock { $0.finishedAfter = $0.frames.count } })
    }

    @Test func framesAreHandledInOrderOneAtATimeThenTheFinisherRunsOnce() async {
        let log = Log()
        let inbox = inbox(log)
        // Pushed from many threads' worth of bursts, as the transport does, with gaps between.
        for burst in 0..<20 {
            for index in 0..<50 { inbox.push(.oversized(burst * 50 + index)) }
            await Task.yield()
        }
        inbox.close()
        inbox.push(.oversized(-1))
        await inbox.finished()
        await inbox.finished()
        let state = log.state.withLock { $0 }
        #expect(state.frames == Array(0..<1000))
        #expect(state.mostAtOnce == 1)
        #expect(state.finishedAfter == 1000)
    }

    @Test func theBoundPausesAtEitherLimitAndResumesOnlyUnderBothMarks() {
        var bound = ConnectionInbox.Bound(limits: InboxLimits(maxFrames: 3, maxBytes: 100, resumeFrames: 1, resumeBytes: 10))
        // The third frame fills it; one more (possible only when pushed off the service thread) asks nothing again.
        let filling = (0..<4).map { _ in bound.added(.binary) }
        #expect(filling == [false, false, true, false])
        let draining = (0..<3).map { _ in bound.removed(.binary) }
        #expect(draining == [false, false, true])
        // 100 bytes fill it too, and it resumes only once the bytes are under their mark as well.
        let large = ConnectionInbox.Item.text([UInt8](repeating: 0x41, count: 100))
        let pausedByBytes = bound.added(large)
        #expect(pausedByBytes)
        let resumedWithBytesWaiting = bound.removed(.binary)
        #expect(!resumedWithBytesWaiting)
        #expect(bound.paused)
        let resumed = bound.removed(large)
        #expect(resumed)
        #expect((bound.frames, bound.bytes, bound.highWaterFrames, bound.highWaterBytes) == (0, 0, 4, 100))
    }

    @Test func closingAnIdleInboxFinishesIt() async {
        let log = Log()
        let inbox = inbox(log)
        inbox.close()
        inbox.close()
        await inbox.finished()
        #expect(log.state.withLock { $0.finishedAfter } == 0)
    }
}

@Suite("outgoing batch")
struct OutgoingBatchTests {
    @Test func framesComeOutInOrderOnceAndLateOnesAreRefused() {
        let batch = OutgoingBatch()
        #expect(batch.add("one", to: ConnectionHandle(rawValue: 1)))
        #expect(batch.add("two", to: ConnectionHandle(rawValue: 2)))
        #expect(batch.flush().map(\.text) == ["one", "two"])
        // After the flush a sender must send directly; nothing is held back.
        #expect(!batch.add("late", to: ConnectionHandle(rawValue: 1)))
        #expect(batch.flush().isEmpty)
    }
}
