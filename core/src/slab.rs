//! `Slab<T>`: a read-only array that either owns its memory or borrows part of a shared byte
//! buffer (a mapped serving image), so the scoring kernel runs unchanged on both.

use anyhow::{bail, Result};
use std::any::Any;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Element types that may be read straight from bytes: no padding, every bit pattern valid.
pub trait Plain: Copy + Send + Sync + 'static {}
impl Plain for u8 {}
impl Plain for u32 {}
impl Plain for u64 {}
impl Plain for i64 {}
impl Plain for f32 {}

pub struct Slab<T: Plain> {
    ptr: *const T,
    len: usize,
    /// Keeps the memory behind `ptr` alive (a boxed slice, or the shared mapping).
    _owner: Arc<dyn Any + Send + Sync>,
}

// SAFETY: a Slab is an immutable view of memory its owner keeps alive; T is plain data.
unsafe impl<T: Plain> Send for Slab<T> {}
unsafe impl<T: Plain> Sync for Slab<T> {}

impl<T: Plain> Slab<T> {
    /// Borrows `len` bytes at `ptr`, kept alive by `owner`.
    ///
    /// # Safety
    /// `ptr..ptr+len` must stay readable and unchanged for as long as `owner` lives.
    pub unsafe fn from_raw(ptr: *const u8, len: usize, owner: Arc<dyn Any + Send + Sync>) -> Slab<u8> {
        Slab { ptr, len, _owner: owner }
    }
}

impl Slab<u8> {
    /// `count` elements of `T` starting `offset` bytes into this buffer, sharing its owner.
    pub fn view<T: Plain>(&self, offset: usize, count: usize) -> Result<Slab<T>> {
        let size = std::mem::size_of::<T>();
        let end = count.checked_mul(size).and_then(|n| n.checked_add(offset));
        if end.is_none_or(|end| end > self.len) {
            bail!("section of {count}×{size} bytes at {offset} runs past the {}-byte image", self.len);
        }
        // SAFETY: in bounds (checked above).
        let ptr = unsafe { self.ptr.add(offset) };
        if !(ptr as usize).is_multiple_of(std::mem::align_of::<T>()) {
            bail!("section at {offset} is not aligned for its {size}-byte elements");
        }
        Ok(Slab { ptr: ptr as *const T, len: count, _owner: self._owner.clone() })
    }
}

impl<T: Plain> From<Vec<T>> for Slab<T> {
    fn from(v: Vec<T>) -> Self {
        let boxed: Box<[T]> = v.into_boxed_slice();
        let (ptr, len) = (boxed.as_ptr(), boxed.len());
        // Moving the box into the Arc does not move its heap block, so `ptr` stays valid.
        Slab { ptr, len, _owner: Arc::new(boxed) }
    }
}

impl<T: Plain> Deref for Slab<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: ptr/len describe memory the owner keeps alive and nobody writes.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl<T: Plain> Clone for Slab<T> {
    fn clone(&self) -> Self {
        Slab { ptr: self.ptr, len: self.len, _owner: self._owner.clone() }
    }
}

impl<T: Plain> Default for Slab<T> {
    fn default() -> Self {
        Vec::new().into()
    }
}

impl<T: Plain + fmt::Debug> fmt::Debug for Slab<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Slab[{}]", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_check_bounds_and_alignment() {
        let bytes: Slab<u8> = (0u8..32).collect::<Vec<_>>().into();
        let words: Slab<u32> = Slab::from(vec![0u32; 8]);
        assert_eq!(words.len(), 8);
        // A Vec<u8> is only byte-aligned in general; align through a u64 buffer instead.
        let aligned: Slab<u64> = vec![0x0706050403020100u64, 0x0f0e0d0c0b0a0908].into();
        let raw = unsafe { Slab::<u8>::from_raw(aligned.as_ptr() as *const u8, 16, Arc::new(aligned.clone())) };
        let v: Slab<u32> = raw.view(4, 2).unwrap();
        assert_eq!(&v[..], &[0x07060504, 0x0b0a0908]);
        assert!(raw.view::<u32>(12, 2).is_err(), "past the end");
        assert!(raw.view::<u32>(2, 1).is_err(), "misaligned");
        assert!(raw.view::<u64>(0, usize::MAX).is_err(), "overflowing length");
        assert_eq!(bytes.view::<u8>(30, 2).unwrap()[..], [30, 31]);
    }
}
