//! IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) from Unix seconds, without a
//! clock and without allocation.

use crate::clock::civil_from_days;

const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTHS: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

fn two(out: &mut [u8], at: usize, v: u32) {
    if let Some(s) = out.get_mut(at..at + 2) {
        s[0] = b'0' + (v / 10 % 10) as u8;
        s[1] = b'0' + (v % 10) as u8;
    }
}

/// Format Unix seconds as IMF-fixdate (always 29 bytes).
pub fn http_date(unix: u64) -> [u8; 29] {
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    let days = (unix / 86_400) as i64;
    let secs = (unix % 86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    let wd = DAYS[(days.rem_euclid(7)) as usize];
    out[0..3].copy_from_slice(wd);
    two(&mut out, 5, d);
    out[8..11].copy_from_slice(MONTHS[(m as usize).saturating_sub(1) % 12]);
    let y = y.clamp(0, 9999) as u32;
    two(&mut out, 12, y / 100);
    two(&mut out, 14, y % 100);
    two(&mut out, 17, secs / 3600);
    two(&mut out, 20, secs / 60 % 60);
    two(&mut out, 23, secs % 60);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        assert_eq!(&http_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&http_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&http_date(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(&http_date(1_795_376_261), b"Sun, 22 Nov 2026 19:37:41 GMT");
    }
}
