//! How the spans of a sparse X (the stretches of `data` and `indices`
//! that hold the rows or columns a slice keeps) are read: in pieces and
//! batches of bounded size, on up to `READERS` threads, each thread keeping
//! to chunks no other thread reads. Only ranges and chunk sizes here; what
//! a read is, the caller says.

use std::ops::Range;

/// A span's values and indices.
pub type Read = (Vec<f64>, Vec<i64>);

/// The most entries of a sparse X read in one request (4 Mi: 48 MiB decoded
/// as f64 values and i64 indices), so a long run of rows is read in pieces.
pub const SPAN_ENTRIES: u64 = 4 << 20;
/// Spans read at once. The HDF5 reader reads one range after another, so a
/// scattered slice's thousands of small spans would wait for a remote
/// store's latency thousands of times in a row; this many threads each wait
/// on their own.
pub const READERS: usize = 16;
/// Entries read before they are placed in the output (bounds the memory a
/// batch of concurrent reads holds), and the most spans in one batch.
const BATCH_ENTRIES: u64 = 4 * SPAN_ENTRIES;
const BATCH_SPANS: usize = 1024;

/// The spans, each read by `read` (which returns a span's values and
/// indices, each as long as the span), by up to `READERS` threads at once;
/// in the order given. `chunks` are the entries per HDF5 chunk of each
/// dataset `read` reads. Long spans are first cut at chunk boundaries
/// into parts (see [`cut`]), so a contiguous slice is read by many threads
/// too. Each thread reads a stretch of consecutive parts, cut only between
/// parts that share no HDF5 chunk: a chunk is fetched by one thread and
/// found in the reader's cache for its next part (two threads asking for
/// one chunk at once would both fetch it).
pub fn read_spans<R>(spans: &[Range<u64>], chunks: &[u64], read: R) -> anyhow::Result<Vec<Read>>
where
    R: Fn(Range<u64>) -> anyhow::Result<Read> + Sync,
{
    let (parts, owners) = cut(spans, chunks);
    let stretched = stretches(&parts, chunks);
    let read = &read;
    let reads: Vec<anyhow::Result<Vec<_>>> = if stretched.len() <= 1 {
        vec![parts.iter().map(|s| read(s.clone())).collect()]
    } else {
        std::thread::scope(|scope| {
            let threads: Vec<_> = stretched
                .into_iter()
                .map(|stretch| &parts[stretch])
                .map(|stretch| {
                    scope.spawn(move || {
                        stretch
                            .iter()
                            .map(|s| read(s.clone()))
                            .collect::<anyhow::Result<Vec<_>>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| {
                    t.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a reader of X stopped")))
                })
                .collect()
        })
    };
    // The parts joined back into their spans, in order.
    let mut out: Vec<Read> = vec![Default::default(); spans.len()];
    let read = reads.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    for (owner, (values, index)) in owners.into_iter().zip(read.into_iter().flatten()) {
        out[owner].0.extend(values);
        out[owner].1.extend(index);
    }
    Ok(out)
}

/// `spans` cut into parts at chunk boundaries — at multiples of a length
/// that holds whole chunks of every dataset read and is about the total
/// read over `READERS` — with, for each part, the span it belongs to. A
/// span shorter than that stays whole (a scattered slice's spans are many
/// already); one long span (a contiguous slice) becomes about `READERS`.
fn cut(spans: &[Range<u64>], chunks: &[u64]) -> (Vec<Range<u64>>, Vec<usize>) {
    let whole = chunks.iter().fold(1u64, |a, c| lcm(a, *c));
    let total: u64 = spans.iter().map(|s| s.end - s.start).sum();
    // About the total over READERS, and never much more than SPAN_ENTRIES
    // (a part is read whole into memory).
    let step = total
        .div_ceil(READERS as u64)
        .min(SPAN_ENTRIES)
        .div_ceil(whole)
        .max(1)
        .saturating_mul(whole);
    let (mut parts, mut owners) = (Vec::new(), Vec::new());
    for (i, span) in spans.iter().enumerate() {
        let mut start = span.start;
        loop {
            let end = (start / step + 1).saturating_mul(step).min(span.end);
            parts.push(start..end);
            owners.push(i);
            if end >= span.end {
                break;
            }
            start = end;
        }
    }
    (parts, owners)
}

fn lcm(a: u64, b: u64) -> u64 {
    let gcd = |mut a: u64, mut b: u64| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    (a / gcd(a, b).max(1)).saturating_mul(b)
}

/// `spans` cut into at most about `READERS` stretches of consecutive spans
/// of about equal entries, never between two spans that touch one chunk
/// (of `chunks` entries each, for each dataset read).
fn stretches(spans: &[Range<u64>], chunks: &[u64]) -> Vec<Range<usize>> {
    let total: u64 = spans.iter().map(|s| s.end - s.start).sum();
    let target = total.div_ceil(READERS as u64).max(1);
    let mut out = Vec::new();
    let (mut start, mut entries) = (0, 0u64);
    let mut last: Option<&Range<u64>> = None;
    for (i, span) in spans.iter().enumerate() {
        if span.is_empty() {
            continue;
        }
        let shares =
            last.is_some_and(|prev| chunks.iter().any(|c| (prev.end - 1) / c >= span.start / c));
        if entries >= target && !shares {
            out.push(start..i);
            (start, entries) = (i, 0);
        }
        entries += span.end - span.start;
        last = Some(span);
    }
    if start < spans.len() {
        out.push(start..spans.len());
    }
    out
}

/// `spans` in consecutive batches of at most `BATCH_SPANS` spans and about
/// `BATCH_ENTRIES` entries (a batch holds at least one span).
pub fn batches(spans: &[Range<u64>]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut entries) = (0, 0u64);
    for (i, span) in spans.iter().enumerate() {
        let n = span.end - span.start;
        if i > start && (entries + n > BATCH_ENTRIES || i - start >= BATCH_SPANS) {
            out.push(start..i);
            (start, entries) = (i, 0);
        }
        entries += n;
    }
    if start < spans.len() {
        out.push(start..spans.len());
    }
    out
}

/// A run of rows cut where its entries would pass `SPAN_ENTRIES` (a row
/// longer than that is one piece of its own).
pub fn pieces(run: Range<u64>, pointers: &[u64]) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    let mut start = run.start;
    for r in run.clone() {
        if r > start && pointers[r as usize + 1] - pointers[start as usize] > SPAN_ENTRIES {
            out.push(start..r);
            start = r;
        }
    }
    if start < run.end {
        out.push(start..run.end);
    }
    out
}

/// Ascending row numbers as runs of consecutive ones.
pub fn runs(rows: &[u64]) -> Vec<Range<u64>> {
    let mut out: Vec<Range<u64>> = Vec::new();
    for &r in rows {
        match out.last_mut() {
            Some(run) if run.end == r => run.end = r + 1,
            _ => out.push(r..r + 1),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one span, on purpose
    fn long_spans_are_cut_at_chunk_boundaries_short_ones_stay_whole() {
        assert_eq!(lcm(6, 4), 12);
        assert_eq!(lcm(100, 100), 100);
        // One span over 64 chunks of 100: cut at multiples of 400 (6,400 / 16).
        let (parts, owners) = cut(&[50..6_450], &[100, 100]);
        assert_eq!(parts.len(), READERS + 1);
        assert_eq!(parts[0], 50..400);
        assert_eq!(parts[1], 400..800);
        assert_eq!(parts.last().unwrap(), &(6_400..6_450));
        assert!(owners.iter().all(|o| *o == 0));
        assert!(parts.windows(2).all(|w| w[0].end == w[1].start));
        // Chunks of 100 and 150 entries: cuts only where both end (300).
        let (parts, _) = cut(&[0..900], &[100, 150]);
        assert_eq!(parts, vec![0..300, 300..600, 600..900]);
        // Many short spans: none is cut, each keeps its owner.
        let spans: Vec<_> = (0..40u64).map(|i| i * 1_000..i * 1_000 + 10).collect();
        let (parts, owners) = cut(&spans, &[100]);
        assert_eq!(parts, spans);
        assert_eq!(owners, (0..40).collect::<Vec<_>>());
        // An empty span is one empty part.
        assert_eq!(cut(&[5..5], &[100]).0, vec![5..5]);
    }

    #[test]
    fn rows_are_read_in_runs() {
        assert_eq!(runs(&[0, 1, 2, 5, 7, 8]), vec![0..3, 5..6, 7..9]);
        assert!(runs(&[]).is_empty());
    }

    #[test]
    fn long_runs_are_read_in_pieces() {
        let half = SPAN_ENTRIES / 2;
        // Rows 0..4 of half a piece each, then a row longer than a piece.
        let pointers = [0, half, 2 * half, 3 * half, 4 * half, 7 * half, 7 * half];
        assert_eq!(pieces(0..6, &pointers), vec![0..2, 2..4, 4..5, 5..6]);
        assert_eq!(pieces(1..3, &pointers), vec![1..3]);
        assert_eq!(pieces(3..3, &pointers), Vec::<std::ops::Range<u64>>::new());
    }

    #[test]
    fn spans_are_read_in_batches_of_bounded_size() {
        let small = vec![0..10; BATCH_SPANS + 5];
        assert_eq!(
            batches(&small),
            vec![0..BATCH_SPANS, BATCH_SPANS..BATCH_SPANS + 5]
        );
        let big = BATCH_ENTRIES / 2 + 1;
        let spans = vec![0..big, 0..big, 0..3 * big, 0..1];
        assert_eq!(batches(&spans), vec![0..1, 1..2, 2..3, 3..4]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn spans_sharing_a_chunk_go_to_one_reader() {
        // Chunks of 100 entries: spans 0 and 1 share chunk 0, span 2 starts
        // chunk 2; 40 spans one chunk apart are cut into READERS stretches.
        let spans = vec![0..10, 50..60, 200..210];
        let one_each = stretches(&spans, &[100]);
        assert_eq!(one_each, vec![0..2, 2..3]);
        let apart: Vec<_> = (0..40u64).map(|i| i * 100..i * 100 + 5).collect();
        let parts = stretches(&apart, &[100]);
        assert_eq!(parts.len(), 40usize.div_ceil(40usize.div_ceil(READERS)));
        assert_eq!(parts.first().unwrap().start, 0);
        assert_eq!(parts.last().unwrap().end, 40);
        // One chunk for everything: one reader.
        assert_eq!(stretches(&apart, &[1 << 20]), vec![0..40]);
    }
}
