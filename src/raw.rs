//! Walking raw BSON for the per-event hot path: the events of a server batch ([`documents`])
//! and a few fields of each ([`find`]), in one pass each.
//!
//! `bson`'s own iterator validates every key and string as UTF-8 and builds an error context
//! per element; an event holds eight elements of which the fold reads four, so that was most of
//! its cost. This walker only steps over elements (their lengths) and converts just the values
//! asked for, and only the types the rules read; any other type is handed back exactly as
//! `RawDocument::get` would give it. Property tests check both against `bson` on arbitrary
//! documents, batches and bytes.

use bson::spec::ElementType;
use bson::{Decimal128, RawBsonRef, RawDocument, Timestamp};

/// The values of `keys` in `doc` (the first occurrence of each), `None` where absent.
///
/// A malformed element ends the walk, as it ends `bson`'s iterator; values found before it are
/// kept.
pub fn find<'a, const N: usize>(
    doc: &'a RawDocument,
    keys: [&str; N],
) -> [Option<RawBsonRef<'a>>; N] {
    let mut found = [None; N];
    let mut missing = N;
    let bytes = doc.as_bytes();
    // A RawDocument is at least 5 bytes: length, elements, NUL.
    let end = bytes.len() - 1;
    let mut at = 4;
    while at < end && missing > 0 {
        let Some(element) = step(bytes, at, end) else {
            break;
        };
        let key = &bytes[at + 1..element.key_end];
        for (slot, wanted) in found.iter_mut().zip(keys) {
            if slot.is_none() && same(key, wanted.as_bytes()) {
                let Some(value) = value(doc, bytes, &element, wanted) else {
                    return found; // malformed value: bson stops here too
                };
                *slot = Some(value);
                missing -= 1;
            }
        }
        at = element.next;
    }
    found
}

/// The elements of a raw array (or document) as documents, in order: `Some` for each embedded
/// document, `None` for an element of another type or a malformed one, after which the walk
/// ends, as `bson`'s iterator ends. For a getMore reply's `nextBatch`: `bson`'s iterator
/// checks every index key as UTF-8 and builds an error context per element.
pub fn documents(array: &[u8]) -> impl Iterator<Item = Option<&RawDocument>> {
    let end = array.len().saturating_sub(1);
    let mut at = 4;
    let mut broken = array.len() < 5;
    std::iter::from_fn(move || {
        if broken || at >= end {
            return None;
        }
        let doc = step(array, at, end).and_then(|e| {
            at = e.next;
            (e.kind == 0x03)
                .then(|| RawDocument::from_bytes(&array[e.key_end + 1..e.next]).ok())
                .flatten()
        });
        broken = doc.is_none();
        Some(doc)
    })
}

/// Byte equality inlined: keys are a few bytes, where a `memcmp` call costs more than the loop.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// One element: where its key ends (the NUL) and its value starts, and where the next begins.
struct Element {
    kind: u8,
    key_end: usize,
    next: usize,
}

fn read_i32(bytes: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

// Inlined: called once per element, and a call returning the element through memory cost
// more than the stepping itself (perf).
#[inline(always)]
fn step(bytes: &[u8], at: usize, end: usize) -> Option<Element> {
    let kind = bytes[at];
    let key_end = at + 1 + bytes[at + 1..end].iter().position(|&b| b == 0)?;
    let v = key_end + 1;
    let cstring_end =
        |from: usize| Some(from + bytes.get(from..end)?.iter().position(|&b| b == 0)? + 1);
    // Length-prefixed values: the prefix counts itself (documents) or not (strings).
    let prefixed = |extra: usize, min: i32| -> Option<usize> {
        let n = read_i32(bytes, v)?;
        (n >= min).then(|| v + extra + n as usize)
    };
    let next = match kind {
        0x01 | 0x09 | 0x11 | 0x12 => v + 8,
        0x02 | 0x0D | 0x0E => prefixed(4, 1)?,
        0x03 | 0x04 | 0x0F => prefixed(0, 5)?,
        0x05 => prefixed(5, 0)?,
        0x06 | 0x0A | 0x7F | 0xFF => v,
        0x07 => v + 12,
        0x08 => v + 1,
        0x0B => cstring_end(cstring_end(v)?)?,
        0x0C => prefixed(4, 1)? + 12,
        0x10 => v + 4,
        0x13 => v + 16,
        _ => return None,
    };
    (next <= end).then_some(Element {
        kind,
        key_end,
        next,
    })
}

/// The element's value as `RawBsonRef`: decoded here for the types the rules read, by `bson`
/// for the rest (rare in events; exactly what `RawDocument::get` returns).
fn value<'a>(
    doc: &'a RawDocument,
    bytes: &'a [u8],
    e: &Element,
    key: &str,
) -> Option<RawBsonRef<'a>> {
    let v = &bytes[e.key_end + 1..e.next];
    let eight = || -> [u8; 8] { v[..8].try_into().expect("8-byte value") };
    Some(match ElementType::from(e.kind)? {
        ElementType::Double => RawBsonRef::Double(f64::from_le_bytes(eight())),
        ElementType::Int64 => RawBsonRef::Int64(i64::from_le_bytes(eight())),
        ElementType::DateTime => {
            RawBsonRef::DateTime(bson::DateTime::from_millis(i64::from_le_bytes(eight())))
        }
        ElementType::Timestamp => {
            let n = u64::from_le_bytes(eight());
            RawBsonRef::Timestamp(Timestamp {
                time: (n >> 32) as u32,
                increment: n as u32,
            })
        }
        ElementType::Int32 => {
            RawBsonRef::Int32(i32::from_le_bytes(v[..4].try_into().expect("4-byte value")))
        }
        ElementType::Decimal128 => {
            RawBsonRef::Decimal128(Decimal128::from_bytes(v.try_into().expect("16-byte value")))
        }
        ElementType::Null => RawBsonRef::Null,
        ElementType::String => {
            // Length includes the trailing NUL, which must be there.
            let (text, nul) = v[4..].split_at(v.len() - 5);
            if nul != [0] {
                return None;
            }
            RawBsonRef::String(std::str::from_utf8(text).ok()?)
        }
        ElementType::EmbeddedDocument => RawBsonRef::Document(RawDocument::from_bytes(v).ok()?),
        _ => doc.get(key).ok()??,
    })
}

#[cfg(test)]
mod tests;
