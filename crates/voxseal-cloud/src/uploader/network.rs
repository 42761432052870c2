//! Whether the network is carrying the upload: request bodies count the bytes the HTTP client
//! takes from them, handed over in pieces of at most 64 KiB so the count follows the socket (a
//! full send buffer stops the taking), and a drain that sees no byte leave for
//! [`WAITING_AFTER`] while some wait to says it is waiting for the network. Acknowledged bytes cannot tell this:
//! on a 2 Mbit/s uplink two 8 MiB parts in flight take a minute to be acknowledged at all.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::body::{Error as BodyError, SdkBody};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// How long no byte may leave before a drain says it is waiting for the network: longer than a
/// request without a body (a completion, a credential refresh) takes on a slow link.
pub const WAITING_AFTER: Duration = Duration::from_secs(10);

/// The largest piece of a body handed to the HTTP client at once.
const PIECE: usize = 64 * 1024;

/// The bytes the HTTP client has taken from request bodies, all requests of an uploader, and
/// the bytes of live bodies it has not taken yet.
#[derive(Debug, Clone, Default)]
pub(super) struct SentBytes {
    taken: Arc<AtomicU64>,
    untaken: Arc<AtomicU64>,
}

impl SentBytes {
    /// `body`, counting what is taken from it (also when the SDK rebuilds it for a retry).
    pub(super) fn count(&self, body: ByteStream) -> ByteStream {
        let counts = self.clone();
        ByteStream::new(body.into_inner().map_preserve_contents(move |inner| {
            let untaken = inner.content_length().unwrap_or(0);
            counts.untaken.fetch_add(untaken, Ordering::Relaxed);
            SdkBody::from_body_1_x(Counting {
                inner,
                rest: Bytes::new(),
                untaken,
                counts: counts.clone(),
            })
        }))
    }

    /// The count so far.
    pub(super) fn get(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    /// Bytes of live bodies not taken yet: when none, no request waits to send, so a quiet
    /// network means only that responses are awaited.
    pub(super) fn untaken(&self) -> u64 {
        self.untaken.load(Ordering::Relaxed)
    }
}

/// Tells from the count whether bytes stopped leaving.
#[derive(Debug)]
pub(super) struct StallWatch {
    seen: u64,
    moved_at: Instant,
}

impl StallWatch {
    /// Starts watching `sent` at `now`.
    pub(super) fn new(sent: &SentBytes, now: Instant) -> Self {
        Self {
            seen: sent.get(),
            moved_at: now,
        }
    }

    /// Whether no byte has left for [`WAITING_AFTER`] up to `now` while some wait to.
    pub(super) fn waiting(&mut self, sent: &SentBytes, now: Instant) -> bool {
        let count = sent.get();
        if count != self.seen || sent.untaken() == 0 {
            self.seen = count;
            self.moved_at = now;
        }
        now.duration_since(self.moved_at) >= WAITING_AFTER
    }
}

/// A body handing `inner`'s data on in pieces of at most [`PIECE`] bytes, counting them.
struct Counting {
    inner: SdkBody,
    rest: Bytes,
    /// Of this body's length, what was not taken yet (given back to the count when dropped).
    untaken: u64,
    counts: SentBytes,
}

impl Drop for Counting {
    fn drop(&mut self) {
        self.counts
            .untaken
            .fetch_sub(self.untaken, Ordering::Relaxed);
    }
}

impl Body for Counting {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if this.rest.is_empty() {
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.rest = data,
                    Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                },
                other => return Poll::Ready(other),
            }
        }
        let piece = this.rest.split_to(this.rest.len().min(PIECE));
        let n = (piece.len() as u64).min(this.untaken);
        this.untaken -= n;
        this.counts.untaken.fetch_sub(n, Ordering::Relaxed);
        this.counts
            .taken
            .fetch_add(piece.len() as u64, Ordering::Relaxed);
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let rest = self.rest.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + rest);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + rest);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_is_handed_over_in_counted_pieces_of_at_most_64_kib() {
        let sent = SentBytes::default();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let body = sent.count(ByteStream::from(data.clone()));
        assert_eq!(body.size_hint(), (200_000, Some(200_000)));
        let mut inner = body.into_inner();
        let mut out = Vec::new();
        let mut pieces = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut inner).poll_frame(cx)).await
        {
            let piece = frame.unwrap().into_data().unwrap();
            pieces.push(piece.len());
            out.extend_from_slice(&piece);
            assert_eq!(sent.get(), out.len() as u64, "counted as it is taken");
        }
        assert_eq!(out, data);
        assert_eq!(pieces, [65_536, 65_536, 65_536, 3_392]);
        assert_eq!(sent.untaken(), 0);
        // A retry rebuilds the body from the start, and counts again; a body dropped before it
        // was sent (an abandoned attempt) leaves nothing waiting.
        let again = inner.try_clone().expect("retryable");
        assert_eq!(again.content_length(), Some(200_000));
        assert_eq!(sent.untaken(), 200_000);
        drop(again);
        drop(inner);
        assert_eq!(sent.untaken(), 0);
    }

    #[test]
    fn waiting_is_no_byte_leaving_for_ten_seconds_while_some_wait_to() {
        let sent = SentBytes::default();
        sent.untaken.store(1_000, Ordering::Relaxed);
        let start = Instant::now();
        let mut watch = StallWatch::new(&sent, start);
        assert!(!watch.waiting(&sent, start + Duration::from_secs(9)));
        assert!(watch.waiting(&sent, start + WAITING_AFTER));
        sent.taken.fetch_add(1, Ordering::Relaxed);
        assert!(!watch.waiting(&sent, start + Duration::from_secs(30)));
        assert!(!watch.waiting(&sent, start + Duration::from_secs(39)));
        assert!(watch.waiting(&sent, start + Duration::from_secs(40)));
        // Every body handed over: only responses are awaited, which is no sign of an outage.
        sent.untaken.store(0, Ordering::Relaxed);
        assert!(!watch.waiting(&sent, start + Duration::from_secs(60)));
        sent.untaken.store(1_000, Ordering::Relaxed);
        assert!(!watch.waiting(&sent, start + Duration::from_secs(69)));
        assert!(watch.waiting(&sent, start + Duration::from_secs(70)));
    }
}
