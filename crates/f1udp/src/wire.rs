//! Checked little-endian reads from a byte slice. Every read returns `None` when the slice is too
//! short, so nothing input can reach ever panics.

/// `N` bytes at `off`, or `None` if the slice ends before.
#[inline]
pub(crate) fn arr<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    b.get(off..)?.get(..N)?.try_into().ok()
}

#[inline]
pub(crate) fn u8_at(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}

#[inline]
pub(crate) fn i8_at(b: &[u8], off: usize) -> Option<i8> {
    b.get(off).map(|&x| x as i8)
}

#[inline]
pub(crate) fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    arr::<2>(b, off).map(u16::from_le_bytes)
}

#[inline]
pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    arr::<4>(b, off).map(u32::from_le_bytes)
}

#[inline]
pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    arr::<8>(b, off).map(u64::from_le_bytes)
}

#[inline]
pub(crate) fn f32_at(b: &[u8], off: usize) -> Option<f32> {
    arr::<4>(b, off).map(f32::from_le_bytes)
}

/// Four consecutive `f32`s at `off`.
#[inline]
pub(crate) fn f32x4(b: &[u8], off: usize) -> Option<[f32; 4]> {
    Some([
        f32_at(b, off)?,
        f32_at(b, off + 4)?,
        f32_at(b, off + 8)?,
        f32_at(b, off + 12)?,
    ])
}

/// Four consecutive `u16`s at `off`.
#[inline]
pub(crate) fn u16x4(b: &[u8], off: usize) -> Option<[u16; 4]> {
    Some([
        u16_at(b, off)?,
        u16_at(b, off + 2)?,
        u16_at(b, off + 4)?,
        u16_at(b, off + 6)?,
    ])
}

/// The sub-slice of `len` bytes at `off` (a car's block), or `None`.
#[inline]
pub(crate) fn block(b: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    b.get(off..)?.get(..len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_checked() {
        let b = [1u8, 2, 3, 4, 5];
        assert_eq!(u8_at(&b, 4), Some(5));
        assert_eq!(u8_at(&b, 5), None);
        assert_eq!(u16_at(&b, 3), Some(0x0504));
        assert_eq!(u16_at(&b, 4), None);
        assert_eq!(u32_at(&b, 1), Some(0x0504_0302));
        assert_eq!(u32_at(&b, 2), None);
        assert_eq!(u64_at(&b, 0), None);
        assert_eq!(f32x4(&b, 0), None);
        assert_eq!(block(&b, 3, 2), Some(&b[3..5]));
        assert_eq!(block(&b, 3, 3), None);
        assert_eq!(block(&b, usize::MAX, 1), None);
        assert_eq!(i8_at(&[0xFF], 0), Some(-1));
    }
}
