//! The shaper's clock: [`Gate`], the wait before each record is released.
//!
//! tokio's timer has a 1 ms tick and rounds every deadline up to the next
//! tick, and its park rounds the wait up to whole milliseconds again, so a
//! token released through it is 0–2 ms late (1.25 ms at the median on an idle
//! machine). That is the whole error budget of "exact within a millisecond".
//!
//! So the binary installs a [`PreciseTimer`]: every open stream's next
//! deadline in one heap, and one Linux `timerfd` armed (to the nanosecond) at
//! the earliest of them plus a batching window that opens with the load (up to
//! 250 µs), so under load a burst of deadlines costs one wake-up, not one each. The timerfd is registered with tokio's
//! reactor, so a parked worker wakes on it directly: no extra thread and no
//! cross-thread wake-ups (a timer thread was tried first and cost 3 µs of CPU
//! per token in futex wake-ups). A dispatcher task reads it and wakes the
//! streams that are due, on a worker. Releases are late by the batching
//! window plus wake-up latency, and never early.
//!
//! Without an installed timer (the library's tests, on tokio's paused clock;
//! other operating systems) a gate is a plain tokio `Sleep`, so paused-clock
//! tests stay exact.

#[cfg(target_os = "linux")]
pub use precise::PreciseTimer;
#[cfg(target_os = "linux")]
use precise::Slot;
#[cfg(all(test, target_os = "linux"))]
pub(crate) use precise::this_thread_has_its_own_timer;
use std::pin::Pin;
#[cfg(target_os = "linux")]
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::time::{Instant, Sleep};

#[cfg(target_os = "linux")]
mod precise {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    use std::os::fd::OwnedFd;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
    use std::time::Duration;

    use futures_util::task::AtomicWaker;
    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;
    use tokio::time::Instant;

    /// Deadlines this close after the earliest are woken with it, at most.
    /// Each wake-up of the timerfd costs a worker wake-up and two syscalls,
    /// so this trades precision for CPU: at 1,000 paced streams, 50 µs cost
    /// 30 % more CPU than tokio's timer, 250 µs cost 12 % (`scripts/bench.sh`).
    const MAX_BATCH: Duration = Duration::from_micros(250);

    /// The batching window for `pending` waiting gates: 0.5 µs each, up to
    /// [`MAX_BATCH`]. With few streams wake-ups are rare anyway, so they get
    /// their exact instant; the window only opens as the load grows.
    pub(super) fn batch(pending: usize) -> Duration {
        let nanos = u64::try_from(pending).unwrap_or(u64::MAX).saturating_mul(500);
        Duration::from_nanos(nanos).min(MAX_BATCH)
    }

    pub(super) static INSTALLED: OnceLock<PreciseTimer> = OnceLock::new();

    thread_local! {
        static THREAD_TIMER: std::cell::RefCell<Option<PreciseTimer>> =
            const { std::cell::RefCell::new(None) };
    }

    /// Whether this thread has a timer of its own (tests).
    #[cfg(test)]
    pub(crate) fn this_thread_has_its_own_timer() -> bool {
        THREAD_TIMER.with(|timer| timer.borrow().is_some())
    }

    /// The timer a gate made on this thread uses: the thread's own, else the
    /// process-wide one, else none (tokio's timer).
    pub(super) fn current() -> Option<PreciseTimer> {
        THREAD_TIMER.with(|timer| timer.borrow().clone()).or_else(|| INSTALLED.get().cloned())
    }

    /// Wakes gates at their deadline to within 250 µs (`MAX_BATCH`) plus the wake-up
    /// latency; see the module docs.
    #[derive(Debug, Clone)]
    pub struct PreciseTimer {
        shared: Arc<Shared>,
    }

    #[derive(Debug)]
    struct Shared {
        state: Mutex<State>,
        timerfd: AsyncFd<OwnedFd>,
        /// Registrations cancelled but still in the heap.
        cancelled: AtomicUsize,
    }

    /// The heap is compacted when more than half of it (and more than this
    /// many entries) is cancelled registrations, so a storm of clients that
    /// leave while waiting on far deadlines cannot grow it without bound.
    const COMPACT_ABOVE: usize = 64;

    #[derive(Debug, Default)]
    struct State {
        heap: BinaryHeap<Reverse<Entry>>,
        /// When the timerfd goes off, if armed.
        armed: Option<Instant>,
    }

    /// One registered deadline.
    #[derive(Debug)]
    struct Entry {
        at: Instant,
        slot: Arc<Slot>,
    }

    impl PartialEq for Entry {
        fn eq(&self, other: &Self) -> bool {
            self.at == other.at
        }
    }
    impl Eq for Entry {}
    impl PartialOrd for Entry {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Entry {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            self.at.cmp(&other.at)
        }
    }

    /// Where the dispatcher and a gate meet.
    #[derive(Debug, Default)]
    pub(super) struct Slot {
        /// Set when the gate moved on (reset or dropped), so the entry is
        /// skipped, or when the dispatcher took the entry out to wake it.
        cancelled: AtomicBool,
        pub(super) waker: AtomicWaker,
    }

    impl Slot {
        /// The gate moved on: the dispatcher skips this registration. The
        /// waker goes at once: it holds the stream's whole task (its
        /// connection's memory, about 5 KiB) alive, and a client that left
        /// must not keep that until a deadline minutes away.
        fn cancel(&self) -> bool {
            drop(self.waker.take());
            !self.cancelled.swap(true, Ordering::AcqRel)
        }

        /// Ready to be registered again (only its gate holds it).
        pub(super) fn reuse(&mut self) {
            *self.cancelled.get_mut() = false;
            drop(self.waker.take());
        }

        /// Out of the heap, or about to be skipped there.
        pub(super) fn is_done(&self) -> bool {
            self.cancelled.load(Ordering::Acquire)
        }
    }

    impl PreciseTimer {
        /// Creates the timerfd and spawns its dispatcher on the current runtime.
        ///
        /// # Errors
        /// When the timerfd cannot be created or registered.
        ///
        /// # Panics
        /// Outside a tokio runtime.
        pub fn start() -> std::io::Result<Self> {
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )?;
            #[allow(
                deprecated,
                reason = "the safe constructor, deprecated in favour of an unsafe one; sound here \
                          because an OwnedFd stays open and the same fd for the AsyncFd's life"
            )]
            let timerfd = AsyncFd::with_interest(fd, Interest::READABLE)?;
            let shared = Arc::new(Shared {
                state: Mutex::default(),
                timerfd,
                cancelled: AtomicUsize::new(0),
            });
            tokio::spawn(Arc::clone(&shared).dispatch());
            Ok(Self { shared })
        }

        /// Makes every gate made from now on use this timer (the binary does
        /// this once at start; the library alone uses tokio's timer).
        pub fn install(self) {
            let _ = INSTALLED.set(self);
        }

        /// Makes every gate made on this thread from now on use this timer,
        /// before the process-wide one: a data-plane shard (`listener/shards.rs`)
        /// has a timer of its own on its single-threaded runtime, so its
        /// streams' wake-ups never cross to another thread.
        pub fn install_on_this_thread(self) {
            THREAD_TIMER.with(|timer| *timer.borrow_mut() = Some(self));
        }

        pub(super) fn register(&self, at: Instant, slot: Arc<Slot>) {
            let mut state = self.shared.lock();
            self.shared.compact(&mut state);
            state.heap.push(Reverse(Entry { at, slot }));
            let fire = super::super::later(at, batch(state.heap.len()));
            if state.armed.is_none_or(|armed| fire < armed) {
                self.shared.arm(&mut state, fire);
            }
        }
    }

    impl PreciseTimer {
        /// Withdraws a registration (its gate moved on or was dropped).
        pub(super) fn cancel(&self, slot: &Slot) {
            if slot.cancel() {
                self.shared.cancelled.fetch_add(1, Ordering::AcqRel);
            }
        }

        /// Registrations in the heap, cancelled ones included (tests).
        #[cfg(test)]
        pub(super) fn registered(&self) -> usize {
            self.shared.lock().heap.len()
        }
    }

    impl Shared {
        /// Drops cancelled registrations once they are most of the heap.
        fn compact(&self, state: &mut State) {
            let cancelled = self.cancelled.load(Ordering::Acquire);
            if cancelled <= COMPACT_ABOVE || cancelled * 2 <= state.heap.len() {
                return;
            }
            let before = state.heap.len();
            state.heap.retain(|Reverse(entry)| !entry.slot.cancelled.load(Ordering::Acquire));
            self.cancelled.fetch_sub(before - state.heap.len(), Ordering::AcqRel);
        }

        fn lock(&self) -> MutexGuard<'_, State> {
            match self.state.lock() {
                Ok(state) => state,
                Err(poisoned) => poisoned.into_inner(),
            }
        }

        /// Arms the timerfd to go off at `fire` (relative, to the nanosecond).
        fn arm(&self, state: &mut State, fire: Instant) {
            let wait = fire.saturating_duration_since(Instant::now()).max(Duration::from_nanos(1));
            let spec = Itimerspec {
                it_interval: Timespec { tv_sec: 0, tv_nsec: 0 },
                it_value: Timespec {
                    tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
                    tv_nsec: i64::from(wait.subsec_nanos()),
                },
            };
            if timerfd_settime(self.timerfd.get_ref(), TimerfdTimerFlags::empty(), &spec).is_ok() {
                state.armed = Some(fire);
            }
        }

        /// The dispatcher: each time the timerfd goes off, wake what is due and
        /// re-arm for the next deadline.
        async fn dispatch(self: Arc<Self>) {
            let mut due = Vec::new();
            loop {
                let Ok(mut ready) = self.timerfd.readable().await else { return };
                let mut expirations = [0u8; 8];
                let read = rustix::io::read(self.timerfd.get_ref(), &mut expirations);
                // One read takes every expiration, so readiness can go now
                // (tokio keeps any that a newer expiration set meanwhile).
                ready.clear_ready();
                if read.is_err() {
                    continue; // EAGAIN: woken for nothing
                }
                let now = Instant::now();
                {
                    let mut state = self.lock();
                    state.armed = None;
                    while state.heap.peek().is_some_and(|Reverse(first)| first.at <= now) {
                        if let Some(Reverse(entry)) = state.heap.pop() {
                            // Marked as done here, so that a later cancel by
                            // its gate is not counted as a dead entry.
                            if entry.slot.cancelled.swap(true, Ordering::AcqRel) {
                                self.cancelled.fetch_sub(1, Ordering::AcqRel);
                            } else {
                                due.push(entry.slot);
                            }
                        }
                    }
                    let window = batch(state.heap.len());
                    if let Some(next) = state
                        .heap
                        .peek()
                        .map(|Reverse(first)| super::super::later(first.at, window))
                    {
                        self.arm(&mut state, next);
                    }
                }
                for slot in due.drain(..) {
                    slot.waker.wake();
                }
            }
        }
    }
}

/// The wait before a record is released: a deadline that can be moved, on
/// the installed [`PreciseTimer`] or else on tokio's timer.
#[derive(Debug)]
pub(crate) struct Gate(Kind);

#[derive(Debug)]
enum Kind {
    /// tokio's timer (no precise timer installed).
    Tokio(Pin<Box<Sleep>>),
    /// The precise timer.
    #[cfg(target_os = "linux")]
    Precise {
        timer: PreciseTimer,
        /// When the gate opens.
        at: Instant,
        /// The registration for `at`, once polled before it.
        slot: Option<Arc<Slot>>,
        /// A finished registration kept for the next one.
        spare: Option<Arc<Slot>>,
    },
}

impl Gate {
    /// A gate open from `at`, on the installed timer.
    pub(crate) fn new(at: Instant) -> Self {
        #[cfg(target_os = "linux")]
        if let Some(timer) = precise::current() {
            return Self::on(&timer, at);
        }
        Self(Kind::Tokio(Box::pin(tokio::time::sleep_until(at))))
    }

    /// A gate on `timer`, whether or not it is installed.
    #[cfg(target_os = "linux")]
    pub fn on(timer: &PreciseTimer, at: Instant) -> Self {
        Self(Kind::Precise { timer: timer.clone(), at, slot: None, spare: None })
    }

    /// Moves the gate to `at`.
    pub(crate) fn reset(&mut self, new_at: Instant) {
        match &mut self.0 {
            Kind::Tokio(sleep) => sleep.as_mut().reset(new_at),
            #[cfg(target_os = "linux")]
            Kind::Precise { timer, at, slot, spare } => {
                *at = new_at;
                if let Some(mut old) = slot.take() {
                    timer.cancel(&old);
                    // Woken and out of the heap: nobody else holds it, so
                    // the next registration reuses it instead of allocating.
                    if let Some(unique) = Arc::get_mut(&mut old) {
                        unique.reuse();
                        *spare = Some(old);
                    }
                }
            }
        }
    }

    /// Ready once the gate's instant has come.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_open(cx).map(|_| ())
    }

    /// Ready once the gate's instant has come, with the instant the gate was
    /// found open: the caller's "now", without reading the clock again (a
    /// paced token's release reads it once on its way in and once here).
    pub(crate) fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        match &mut self.0 {
            Kind::Tokio(sleep) => {
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(Instant::now())
            }
            #[cfg(target_os = "linux")]
            Kind::Precise { at, slot, .. } => {
                // Registered and not yet taken out by the dispatcher: the
                // timer has not found it due, so it waits for that wake-up
                // without reading the clock. hyper polls a body again after
                // each frame, so this is most polls of a paced stream.
                if let Some(waiting) = slot.as_ref().filter(|slot| !slot.is_done()) {
                    waiting.waker.register(cx.waker());
                    return Poll::Pending;
                }
                let now = Instant::now();
                if now >= *at {
                    return Poll::Ready(now);
                }
                self.wait(cx);
                Poll::Pending
            }
        }
    }

    /// Waits for the gate's instant, which the caller has just seen is still
    /// to come: registers without reading the clock to check again. Always
    /// pending on the precise timer (a registration already past fires at
    /// the timer's next dispatch).
    pub(crate) fn poll_known_ahead(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            Kind::Tokio(sleep) => sleep.as_mut().poll(cx),
            #[cfg(target_os = "linux")]
            Kind::Precise { .. } => {
                self.wait(cx);
                Poll::Pending
            }
        }
    }

    /// Registers `cx`'s waker for the gate's instant on the precise timer.
    #[cfg(target_os = "linux")]
    fn wait(&mut self, cx: &mut Context<'_>) {
        let Kind::Precise { timer, at, slot, spare } = &mut self.0 else { return };
        match slot {
            // Woken early (another source of wake-ups, or the batch
            // window on a clock that disagrees): keep waiting.
            Some(slot) if !slot.is_done() => slot.waker.register(cx.waker()),
            _ => {
                let new = spare.take().unwrap_or_default();
                new.waker.register(cx.waker());
                timer.register(*at, Arc::clone(&new));
                *slot = Some(new);
            }
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Kind::Precise { timer, slot: Some(slot), .. } = &self.0 {
            timer.cancel(slot);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    //! Real time, real thread: bounded tolerances, not exact instants.

    use std::future::poll_fn;

    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn gates_open_at_their_deadline_never_before_and_within_a_bound() {
        let timer = PreciseTimer::start().unwrap();
        let t0 = Instant::now();
        // 300 gates over 60 ms, several sharing each millisecond.
        let offsets: Vec<Duration> =
            (0..300u64).map(|i| Duration::from_micros(i * 197 % 60_000)).collect();
        let waits = offsets.iter().map(|&offset| {
            let timer = timer.clone();
            tokio::spawn(async move {
                let mut gate = Gate::on(&timer, t0 + offset);
                poll_fn(|cx| gate.poll(cx)).await;
                Instant::now() - t0
            })
        });
        let opened = futures_util::future::join_all(waits).await;
        let mut lateness: Vec<Duration> = Vec::new();
        for (offset, opened) in offsets.iter().zip(opened) {
            let opened = opened.unwrap();
            assert!(opened >= *offset, "opened at {opened:?}, before its deadline {offset:?}");
            lateness.push(opened - *offset);
        }
        lateness.sort();
        let median = lateness[lateness.len() / 2];
        // Loose enough for a busy CI machine (the other tests run beside
        // this one); the bench measures the precision (0.3 ms at the median).
        assert!(median < Duration::from_millis(2), "median lateness {median:?}");
        assert!(lateness[lateness.len() - 1] < Duration::from_millis(50), "{lateness:?}");
    }

    /// The shaper's path: a gate registered without a clock check because
    /// its deadline is known to be ahead, then polled open, reports an
    /// instant at or after the deadline and no later than the poll's return.
    #[tokio::test]
    async fn a_gate_known_ahead_waits_and_reports_when_it_was_found_open() {
        let timer = PreciseTimer::start().unwrap();
        let t0 = Instant::now();
        let at = t0 + Duration::from_millis(10);
        let mut gate = Gate::on(&timer, at);
        assert!(poll_fn(|cx| Poll::Ready(gate.poll_known_ahead(cx))).await.is_pending());
        let opened = poll_fn(|cx| gate.poll_open(cx)).await;
        let returned = Instant::now();
        assert!(opened >= at, "found open at {:?}, before {:?}", opened - t0, at - t0);
        assert!(opened <= returned);
        // Already open: ready at once, with the instant it was read.
        let before = Instant::now();
        let again = poll_fn(|cx| gate.poll_open(cx)).await;
        assert!(again >= before && again <= Instant::now());
    }

    /// A registered gate polled again before the timer takes it answers
    /// pending without reading the clock, and the waker of the latest poll is
    /// the one woken (a poll from another task moves the wake-up there).
    #[tokio::test]
    async fn a_waiting_gate_polled_again_wakes_the_latest_waker_at_its_deadline() {
        use futures_util::task::{ArcWake, waker};
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::Waker;

        struct Count(AtomicUsize);
        impl ArcWake for Count {
            fn wake_by_ref(this: &Arc<Self>) {
                this.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let timer = PreciseTimer::start().unwrap();
        let at = Instant::now() + Duration::from_millis(5);
        let mut gate = Gate::on(&timer, at);
        let (first, second) =
            (Arc::new(Count(AtomicUsize::new(0))), Arc::new(Count(AtomicUsize::new(0))));
        let poll_with = |gate: &mut Gate, count: &Arc<Count>| {
            let waker: Waker = waker(Arc::clone(count));
            gate.poll_open(&mut Context::from_waker(&waker)).is_pending()
        };
        assert!(poll_with(&mut gate, &first));
        assert!(poll_with(&mut gate, &second));
        // Woken once, by the dispatcher, on the latest waker.
        let deadline = Instant::now() + Duration::from_secs(10);
        while second.0.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert!(Instant::now() >= at);
        // Taken out by the dispatcher: the next poll reads the clock and opens.
        assert!(!poll_with(&mut gate, &second));
    }

    #[test]
    fn the_batching_window_opens_with_the_load() {
        use super::precise::batch;
        assert_eq!(batch(0), Duration::ZERO);
        assert_eq!(batch(10), Duration::from_micros(5));
        assert_eq!(batch(100), Duration::from_micros(50));
        assert_eq!(batch(500), Duration::from_micros(250));
        assert_eq!(batch(100_000), Duration::from_micros(250));
    }

    #[tokio::test]
    async fn a_moved_gate_opens_at_its_new_deadline_only() {
        let timer = PreciseTimer::start().unwrap();
        let t0 = Instant::now();
        let mut gate = Gate::on(&timer, t0 + Duration::from_millis(5));
        // Registered for 5 ms, then moved to 40 ms.
        assert!(poll_fn(|cx| Poll::Ready(gate.poll(cx))).await.is_pending());
        gate.reset(t0 + Duration::from_millis(40));
        poll_fn(|cx| gate.poll(cx)).await;
        assert!(t0.elapsed() >= Duration::from_millis(40), "{:?}", t0.elapsed());
    }

    /// A client that leaves while its stream waits on a far deadline must not
    /// keep its task alive until then: the gate's waker goes with the gate,
    /// and the heap sheds the dead registrations.
    #[tokio::test]
    async fn a_dropped_gate_lets_go_of_its_waker_and_the_heap_is_compacted() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::{Wake, Waker};

        /// Counts the clones of a waker that are still alive.
        struct Counted(AtomicUsize);
        impl Wake for Counted {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let timer = PreciseTimer::start().unwrap();
        let far = Instant::now() + Duration::from_secs(600);
        let counted = Arc::new(Counted(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counted));
        let mut cx = Context::from_waker(&waker);
        let mut gates: Vec<Gate> = (0..1000).map(|_| Gate::on(&timer, far)).collect();
        for gate in &mut gates {
            assert!(gate.poll(&mut cx).is_pending());
        }
        assert_eq!(Arc::strong_count(&counted), 1 + 1000 + 1, "each gate holds a waker");
        drop(gates);
        assert_eq!(Arc::strong_count(&counted), 1 + 1, "no gate holds one once dropped");
        // The next registration compacts the heap: only it is left.
        let mut next = Gate::on(&timer, far);
        assert!(next.poll(&mut cx).is_pending());
        assert_eq!(timer.registered(), 1);
    }

    /// A gate set to the far future neither panics nor fires.
    #[tokio::test]
    async fn a_deadline_at_the_edge_of_time_does_not_panic() {
        let timer = PreciseTimer::start().unwrap();
        let edge = crate::shape::later(Instant::now(), Duration::MAX);
        let mut gate = Gate::on(&timer, edge);
        assert!(poll_fn(|cx| Poll::Ready(gate.poll(cx))).await.is_pending());
        let mut near = Gate::on(&timer, Instant::now() + Duration::from_millis(2));
        poll_fn(|cx| near.poll(cx)).await;
    }

    #[tokio::test]
    async fn a_dropped_gate_is_skipped_and_the_others_still_open() {
        let timer = PreciseTimer::start().unwrap();
        let t0 = Instant::now();
        let mut dropped = Gate::on(&timer, t0 + Duration::from_millis(2));
        assert!(poll_fn(|cx| Poll::Ready(dropped.poll(cx))).await.is_pending());
        drop(dropped);
        let mut kept = Gate::on(&timer, t0 + Duration::from_millis(4));
        poll_fn(|cx| kept.poll(cx)).await;
        assert!(t0.elapsed() >= Duration::from_millis(4));
    }
}
