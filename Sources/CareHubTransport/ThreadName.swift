import CLibWebSockets

/// Names the calling thread in the kernel (at most 15 bytes are kept), where `top -H`, `ps -L`
/// and profilers read it; Foundation's `Thread.name` does not reach it on Linux.
public func nameCurrentThread(_ name: String) {
    carehub_name_thread(String(name.utf8.prefix(15)) ?? "carehub")
}
