//! Memory the agent hands back once its start is over.
//!
//! Two kinds of memory stay in the agent's RSS after the start although nothing uses
//! them again:
//!
//! - **Pages of the agent's own code and read-only data that only the start used**:
//!   parsing the configuration, the AWS SDK's credential chain and secret fetches, TLS
//!   set-up, creating the log stream. A page of a file mapping stays mapped once it is
//!   touched, and the kernel maps up to 16 pages around each one it faults in. At idle
//!   that is most of the agent's resident memory (about 4.5 MiB of the release build's
//!   code and read-only data, of which the idle agent uses about 0.8 MiB).
//! - **Free memory inside malloc's heaps**: glibc returns it to the system only from the
//!   top of a heap, so what the start and every burst of logging freed below a live
//!   allocation stays resident.
//!
//! [`hand_back`] drops the first from the process's page tables (`madvise` with
//! `MADV_DONTNEED` on the executable's read-only mappings that hold no private copy of a
//! page) and returns the second (`malloc_trim`). The pages stay in the page cache: code
//! that runs again is mapped back by a minor fault, without reading the disk, and the
//! kernel can reclaim the rest under memory pressure without unmapping it first.
//! [`after_start`] decides when: once, when the start has settled; then the heap again
//! each time the log pipeline goes quiet after a burst.
//!
//! The mappings are read from `/proc/self/smaps` ([`parse_smaps`]); the executable's are
//! the ones with the device and inode of the mapping that holds this module's code,
//! because on overlayfs (a container's root) `stat` and the maps do not agree on them.

// Denied in the rest of the crate. Allowed here for the two calls std has no safe form
// of: `madvise` and `malloc_trim`. Each block says why it is sound.
#![allow(unsafe_code)]

use std::time::{Duration, Instant};

use logship::account::Activity;

/// How often [`after_start`] samples the log pipeline once the start is over.
const SAMPLE: Duration = Duration::from_secs(1);
/// How often it samples it during the start, and how long the pipeline must then stay
/// settled and still: the start's pages go back about a second after the first events
/// are answered, not up to two (the idle RSS is reached sooner).
const START_SAMPLE: Duration = Duration::from_millis(250);
const START_QUIET: Duration = Duration::from_secs(1);
/// The longest the first hand-back waits for the pipeline to settle: an app that logs
/// without pause, or a CloudWatch Logs that never answers, still gets it.
const FIRST_WAIT: Duration = Duration::from_secs(60);
/// How long the pipeline must be quiet after a burst before the heap is trimmed again.
const QUIET: Duration = Duration::from_secs(10);

/// One mapping of `/proc/self/smaps`: its header line and the two sizes read here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: usize,
    pub end: usize,
    pub readable: bool,
    pub writable: bool,
    pub executable: bool,
    /// `p` (copy-on-write), as opposed to `s` (shared).
    pub private: bool,
    /// The device (`major:minor`, as the kernel prints it) and inode of the mapped file;
    /// inode 0 for anonymous memory.
    pub device: String,
    pub inode: u64,
    /// What the kernel shows after the inode: the file's path (` (deleted)` after it
    /// when it is gone), a name such as `[heap]`, or nothing.
    pub path: String,
    /// `Rss:` in KiB; `None` when the mapping had no such line.
    pub rss_kib: Option<u64>,
    /// `Anonymous:` in KiB: pages of the mapping that are the process's own copy.
    pub anonymous_kib: Option<u64>,
}

impl Mapping {
    fn contains(&self, address: usize) -> bool {
        self.start <= address && address < self.end
    }

    fn same_file(&self, other: &Mapping) -> bool {
        self.inode != 0 && self.inode == other.inode && self.device == other.device
    }
}

/// The mappings of `/proc/PID/smaps` text, in order (see [`SmapsReader`]).
pub fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut reader = SmapsReader::default();
    for line in text.lines() {
        reader.line(line);
    }
    reader.finish()
}

/// Reads `/proc/PID/smaps` a line at a time, so the agent never holds the whole text.
/// Lines that are neither a mapping's header nor a `Key: value` field of one are
/// skipped, and so is a header that does not read as one (its fields then go to no
/// mapping): the text comes from the kernel, but nothing here trusts its shape.
#[derive(Debug, Default)]
pub struct SmapsReader {
    maps: Vec<Mapping>,
    /// The mapping the field lines belong to, and whether its Rss and Anonymous were
    /// seen.
    current: Option<(usize, [bool; 2])>,
}

impl SmapsReader {
    /// Reads one line (without its line end).
    pub fn line(&mut self, line: &str) {
        if let Some(m) = header(line) {
            self.maps.push(m);
            self.current = Some((self.maps.len() - 1, [false; 2]));
            return;
        }
        let field = line.split_once(':').filter(|(key, _)| {
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        let (Some((key, value)), Some((i, seen))) = (field, self.current.as_mut()) else {
            // Neither a header nor a field (a header that does not read as one, say):
            // what follows belongs to no mapping until the next header.
            self.current = None;
            return;
        };
        let Some(m) = self.maps.get_mut(*i) else {
            return;
        };
        let kib = || {
            let mut words = value.split_ascii_whitespace();
            let n = words.next()?.parse::<u64>().ok()?;
            (words.next() == Some("kB") && words.next().is_none()).then_some(n)
        };
        let (slot, seen) = match key {
            "Rss" => (&mut m.rss_kib, &mut seen[0]),
            "Anonymous" => (&mut m.anonymous_kib, &mut seen[1]),
            _ => return,
        };
        // A field given twice is not known: the mapping is then never dropped.
        *slot = if *seen { None } else { kib() };
        *seen = true;
    }

    pub fn finish(self) -> Vec<Mapping> {
        self.maps
    }
}

/// Reads the smaps of this process ([`read_smaps`]).
fn read_own_smaps() -> std::io::Result<Vec<Mapping>> {
    read_smaps(std::io::BufReader::new(std::fs::File::open(
        "/proc/self/smaps",
    )?))
}

/// Reads smaps a line at a time, bytes that are not UTF-8 (a file's name can hold any)
/// replaced.
fn read_smaps(mut file: impl std::io::BufRead) -> std::io::Result<Vec<Mapping>> {
    let mut reader = SmapsReader::default();
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        if file.read_until(b'\n', &mut line)? == 0 {
            return Ok(reader.finish());
        }
        let text = String::from_utf8_lossy(&line);
        reader.line(text.trim_end_matches('\n').trim_end_matches('\r'));
    }
}

/// A mapping's header: `START-END PERMS OFFSET MAJOR:MINOR INODE [PATH]`.
fn header(line: &str) -> Option<Mapping> {
    // The first five words; the path is the rest, as written (it may hold spaces).
    fn word(s: &str) -> Option<(&str, &str)> {
        let s = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
        let end = s.find(|c: char| c.is_ascii_whitespace()).unwrap_or(s.len());
        s.get(..end)
            .zip(s.get(end..))
            .filter(|(w, _)| !w.is_empty())
    }
    let (range, rest) = word(line)?;
    let (perms, rest) = word(rest)?;
    let (offset, rest) = word(rest)?;
    let (device, rest) = word(rest)?;
    let (inode, rest) = word(rest)?;
    let path = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let hex = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| usize::from_str_radix(s, 16).ok())
            .flatten()
    };
    let (start, end) = range.split_once('-')?;
    let (start, end) = (hex(start)?, hex(end)?);
    let [r, w, x, p] = perms.as_bytes() else {
        return None;
    };
    let flag = |b: &u8, set: u8| match *b {
        b'-' => Some(false),
        b if b == set => Some(true),
        _ => None,
    };
    let private = match p {
        b'p' => true,
        b's' => false,
        _ => return None,
    };
    hex(offset)?;
    let (major, minor) = device.split_once(':')?;
    hex(major)?;
    hex(minor)?;
    if !inode.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Mapping {
        start,
        end: (end > start).then_some(end)?,
        readable: flag(r, b'r')?,
        writable: flag(w, b'w')?,
        executable: flag(x, b'x')?,
        private,
        device: device.to_owned(),
        inode: inode.parse().ok()?,
        path: path.to_owned(),
        rss_kib: None,
        anonymous_kib: None,
    })
}

/// The mappings [`hand_back`] may drop: those of the file mapped at `code` (the
/// executable), private and not writable, and known to hold no page of the process's
/// own. Dropping such a page loses nothing: the next access maps the file's page again.
/// The relocated read-only data (`PT_GNU_RELRO`) is excluded by its anonymous pages.
pub fn droppable(maps: &[Mapping], code: usize) -> Vec<&Mapping> {
    let Some(exe) = maps.iter().find(|m| m.contains(code) && m.inode != 0) else {
        return Vec::new();
    };
    maps.iter()
        .filter(|m| {
            m.same_file(exe)
                && m.private
                && !m.writable
                && m.anonymous_kib == Some(0)
                && m.rss_kib.is_some()
        })
        .collect()
}

/// What one [`hand_back`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Handed {
    /// Resident KiB of the executable's pages that were dropped (as `smaps` had them
    /// just before).
    pub code_kib: u64,
    /// Whether malloc gave memory back to the system.
    pub trimmed: bool,
}

/// What to hand back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The executable's pages and the heap's free memory: once, after the start.
    CodeAndHeap,
    /// The heap's free memory only: after a burst of logging.
    Heap,
}

/// Hands back what `scope` says (see the module docs). Never fails: a `/proc` that cannot
/// be read, or a kernel that refuses the advice, leaves the memory where it was.
pub fn hand_back(scope: Scope) -> Handed {
    let code_kib = match scope {
        Scope::CodeAndHeap => drop_code_pages(),
        Scope::Heap => 0,
    };
    Handed {
        code_kib,
        trimmed: trim_heap(),
    }
}

/// Drops the executable's droppable pages from the page tables; the KiB they held.
fn drop_code_pages() -> u64 {
    let maps = match read_own_smaps() {
        Ok(maps) => maps,
        Err(e) => {
            tracing::debug!(error = %e, "cannot read /proc/self/smaps; the start's code pages stay mapped: {e}");
            return 0;
        }
    };
    let here = drop_code_pages as fn() -> u64 as usize;
    let mut kib = 0;
    for m in droppable(&maps, here) {
        // SAFETY: `m` is a private, read-only mapping of the executable with no
        // anonymous page, as smaps had it a moment ago, and it stays so: the kernel
        // maps the executable at exec and nothing in the agent unmaps, remaps or
        // `mprotect`s it (the dynamic loader's last `mprotect` is the relocated data's,
        // before `main`). For such a mapping MADV_DONTNEED only clears page-table
        // entries; the next access maps the same page of the file again, so no byte
        // the process reads changes. (A file changed in place under a running program
        // is seen through its clean private pages with or without this.) The range is
        // one the kernel reported; if it were not mapped, madvise would fail with
        // ENOMEM and touch nothing.
        let done = unsafe {
            nix::libc::madvise(
                m.start as *mut nix::libc::c_void,
                m.end - m.start,
                nix::libc::MADV_DONTNEED,
            )
        };
        if done == 0 {
            kib += m.rss_kib.unwrap_or(0);
        }
    }
    kib
}

/// Gives malloc's free memory back to the system; whether any was.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() -> bool {
    // SAFETY: malloc_trim takes no pointer and is thread-safe: it locks each arena
    // while it releases that arena's free pages.
    unsafe { nix::libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() -> bool {
    false
}

/// Hands memory back after the start and after each burst of logging, for the life of
/// the agent (run it on the log pipeline's thread, not on PID 1's). `activity` reads the
/// pipeline.
///
/// - The start is over when the pipeline has settled (with shipping, the first events
///   are answered and none waits) and did not move for [`START_QUIET`], or after
///   [`FIRST_WAIT`]: then the code pages and the heap go back.
/// - After that, each time the pipeline has moved and then been quiet for [`QUIET`],
///   the heap goes back again.
pub async fn after_start(activity: impl Fn() -> Activity) {
    let began = Instant::now();
    let sampler = |period| {
        let mut every = tokio::time::interval(period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every
    };
    let mut every = sampler(START_SAMPLE);
    every.tick().await;
    let mut last = activity();
    let mut still_since = Instant::now();
    loop {
        every.tick().await;
        let now = activity();
        if !(now.settled && now.moved == last.moved) {
            still_since = Instant::now();
        }
        last = now;
        if still_since.elapsed() >= START_QUIET || began.elapsed() >= FIRST_WAIT {
            break;
        }
    }
    report(hand_back(Scope::CodeAndHeap), "the start is over");
    let mut every = sampler(SAMPLE);
    every.tick().await;
    let mut handed = last.moved;
    let mut quiet_since: Option<Instant> = None;
    loop {
        every.tick().await;
        let now = activity();
        quiet_since = if now.moved == last.moved && now.settled && now.moved != handed {
            Some(quiet_since.unwrap_or_else(Instant::now))
        } else {
            None
        };
        last = now;
        if quiet_since.is_some_and(|t| t.elapsed() >= QUIET) {
            report(hand_back(Scope::Heap), "the log pipeline is quiet");
            handed = now.moved;
            quiet_since = None;
        }
    }
}

fn report(handed: Handed, why: &str) {
    tracing::debug!(
        code_kib = handed.code_kib,
        heap_trimmed = handed.trimmed,
        "{why}: handed back {} KiB of code pages (malloc gave memory back: {})",
        handed.code_kib,
        handed.trimmed
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE_SMAPS: &str = "\
5581f0a00000-5581f0cf5000 r--p 00000000 fd:01 4198723                    /usr/local/bin/agent
Size:               3028 kB
Rss:                 924 kB
Anonymous:             0 kB
VmFlags: rd mr mw me dw
5581f0cf5000-5581f1780000 r-xp 002f5000 fd:01 4198723                    /usr/local/bin/agent
Size:              10796 kB
Rss:                3696 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me dw
5581f1780000-5581f1807000 r--p 00d7f000 fd:01 4198723                    /usr/local/bin/agent
Rss:                 540 kB
Anonymous:           536 kB
5581f1807000-5581f182d000 rw-p 00e04000 fd:01 4198723                    /usr/local/bin/agent
Rss:                 152 kB
Anonymous:           152 kB
5581f2000000-5581f20c2000 rw-p 00000000 00:00 0                          [heap]
Rss:                 712 kB
Anonymous:           712 kB
7f0000000000-7f0000156000 r-xp 00026000 fd:01 3000001                    /usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)
Rss:                 948 kB
Anonymous:             0 kB
7f0000200000-7f0000201000 r--s 00000000 00:05 77                         /dev/shm/a file
Rss:                   4 kB
Anonymous:             0 kB
";

    #[test]
    fn smaps_is_read_mapping_by_mapping() {
        let maps = parse_smaps(SAMPLE_SMAPS);
        assert_eq!(maps.len(), 7);
        let text = &maps[1];
        assert_eq!((text.start, text.end), (0x5581f0cf5000, 0x5581f1780000));
        assert!(text.readable && !text.writable && text.executable && text.private);
        assert_eq!((text.device.as_str(), text.inode), ("fd:01", 4198723));
        assert_eq!((text.rss_kib, text.anonymous_kib), (Some(3696), Some(0)));
        assert_eq!(text.path, "/usr/local/bin/agent");
        assert_eq!((maps[4].inode, maps[4].path.as_str()), (0, "[heap]"));
        assert_eq!(
            maps[5].path,
            "/usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)"
        );
        assert_eq!(maps[6].path, "/dev/shm/a file");
        assert!(!maps[6].private);
    }

    #[test]
    fn only_the_executables_clean_read_only_mappings_are_dropped() {
        let maps = parse_smaps(SAMPLE_SMAPS);
        let in_text = 0x5581f0cf5000 + 0x1234;
        let dropped: Vec<usize> = droppable(&maps, in_text).iter().map(|m| m.start).collect();
        // Not the relocated data (its own copies), the writable data, the heap, libc,
        // or the shared file.
        assert_eq!(dropped, [0x5581f0a00000, 0x5581f0cf5000]);
        // Code in libc finds libc's mapping (a library that calls this drops its own).
        let in_libc = 0x7f0000000000 + 16;
        let libc: Vec<usize> = droppable(&maps, in_libc).iter().map(|m| m.start).collect();
        assert_eq!(libc, [0x7f0000000000]);
        // An address in no file mapping drops nothing.
        assert!(droppable(&maps, 0x5581f2000010).is_empty());
        assert!(droppable(&maps, 16).is_empty());
    }

    #[test]
    fn a_mapping_without_its_anonymous_line_is_not_dropped() {
        let text = "1000-2000 r-xp 00000000 08:01 12 /bin/x\nRss: 4 kB\n";
        let maps = parse_smaps(text);
        assert_eq!(maps.len(), 1);
        assert!(droppable(&maps, 0x1800).is_empty());
    }

    #[test]
    fn malformed_headers_and_fields_are_skipped() {
        let text = "\
zz-2000 r-xp 0 08:01 12 /bin/x
Rss: 4 kB
1000-2000 rwxq 0 08:01 12 /bin/x
2000-1000 r-xp 0 08:01 12 /bin/x
1000-2000 r-xp 0 0801 12 /bin/x
1000-2000 r-xp 0 08:01 1a /bin/x
1000-2000 r-xp 0 08:01 12 /bin/x
Rss: 4 MB
Anonymous: -1 kB
";
        let maps = parse_smaps(text);
        assert_eq!(maps.len(), 1, "{maps:?}");
        assert_eq!((maps[0].rss_kib, maps[0].anonymous_kib), (None, None));
        // A header that does not read as one ends the mapping before it: its fields
        // are not taken for the earlier mapping's.
        let text = "\
1000-2000 r-xp 0 08:01 12 /bin/x
Rss: 8 kB
Anonymous: 0 kB
3000-4000 r--q 0 08:01 12 /bin/x
Anonymous: 4 kB
";
        let maps = parse_smaps(text);
        assert_eq!((maps[0].rss_kib, maps[0].anonymous_kib), (Some(8), Some(0)));
        // A field given twice is not known.
        let text =
            "1000-2000 r-xp 0 08:01 12 /bin/x\nRss: 8 kB\nAnonymous: 0 kB\nAnonymous: 0 kB\n";
        let maps = parse_smaps(text);
        assert_eq!((maps[0].rss_kib, maps[0].anonymous_kib), (Some(8), None));
        assert!(droppable(&maps, 0x1000).is_empty());
    }

    #[test]
    fn smaps_bytes_that_are_not_utf8_are_read_around() {
        let bytes =
            b"1000-2000 r-xp 00000000 08:01 12 /bin/\xff\xfe x\r\nRss: 8 kB\r\nAnonymous: 0 kB\n\
3000-4000 r--p 00000000 08:01 12 /bin/\xff\xfe x\nRss: 4 kB\nAnonymous: 0 kB";
        let maps = read_smaps(&bytes[..]).expect("read");
        assert_eq!(maps.len(), 2);
        assert_eq!((maps[0].rss_kib, maps[0].anonymous_kib), (Some(8), Some(0)));
        assert_eq!((maps[1].rss_kib, maps[1].anonymous_kib), (Some(4), Some(0)));
        assert_eq!(droppable(&maps, 0x1000).len(), 2);
    }

    /// Read-only data of the test binary that nothing but the test below reads: 256
    /// pages (of 4 KiB), in the executable's read-only data.
    static BLOB: [u8; 1 << 20] = [7; 1 << 20];

    fn blob_sum() -> u64 {
        std::hint::black_box(&BLOB)
            .iter()
            .map(|&b| u64::from(b))
            .sum()
    }

    /// How many of the pages of `bytes` are in this process's page tables, and how many
    /// pages it spans (`/proc/self/pagemap`: one 64-bit entry per page, bit 63 set when
    /// the page is present).
    fn present_pages(bytes: &[u8]) -> (usize, usize) {
        use std::io::{Read, Seek, SeekFrom};
        // SAFETY: sysconf reads a constant of the system; no pointer is passed.
        let page = unsafe { nix::libc::sysconf(nix::libc::_SC_PAGESIZE) } as usize;
        let first = bytes.as_ptr() as usize / page;
        let last = (bytes.as_ptr() as usize + bytes.len() - 1) / page;
        let pages = last - first + 1;
        let mut map = std::fs::File::open("/proc/self/pagemap").expect("pagemap");
        map.seek(SeekFrom::Start(first as u64 * 8)).expect("seek");
        let mut entries = vec![0u8; pages * 8];
        map.read_exact(&mut entries).expect("read pagemap");
        let present = entries
            .chunks_exact(8)
            .filter(|e| u64::from_le_bytes((*e).try_into().unwrap_or_default()) >> 63 == 1)
            .count();
        (present, pages)
    }

    /// The real thing, in this test process: the executable's clean read-only pages
    /// leave the page tables, and come back as they were when they are read again.
    #[test]
    fn handing_back_drops_the_executables_pages_and_they_come_back_intact() {
        let sum = blob_sum();
        let (present, pages) = present_pages(&BLOB);
        assert_eq!(present, pages, "the blob was just read");
        let maps = read_own_smaps().expect("smaps");
        let here = blob_sum as fn() -> u64 as usize;
        assert!(droppable(&maps, here).iter().any(|m| m.executable));
        let handed = hand_back(Scope::CodeAndHeap);
        assert!(handed.code_kib >= 1024, "{handed:?}");
        let (present, _) = present_pages(&BLOB);
        // Other tests run beside this one, and the kernel maps pages around each one
        // they fault in: at most 15 on either side of the blob come back at once.
        assert!(
            present <= 32,
            "{present} of the blob's {pages} pages are still mapped"
        );
        assert_eq!(blob_sum(), sum, "the pages read back as they were");
        assert_eq!(sum, 7 << 20);
        assert_eq!(present_pages(&BLOB).0, pages);
    }

    fn mapping() -> impl Strategy<Value = (Mapping, String)> {
        (
            0usize..1 << 40,
            1usize..1 << 20,
            "[r-][w-][x-][ps]",
            0u64..1 << 32,
            (0u32..256, 0u32..256),
            0u64..u64::MAX,
            "(/[a-z. ()]{1,12}){0,3}",
            proptest::option::of(0u64..1 << 30),
            proptest::option::of(0u64..1 << 30),
        )
            .prop_map(
                |(start, len, perms, offset, (major, minor), inode, path, rss, anon)| {
                    let p = perms.as_bytes();
                    let m = Mapping {
                        start,
                        end: start + len,
                        readable: p[0] == b'r',
                        writable: p[1] == b'w',
                        executable: p[2] == b'x',
                        private: p[3] == b'p',
                        device: format!("{major:02x}:{minor:02x}"),
                        inode,
                        path: path.clone(),
                        rss_kib: rss,
                        anonymous_kib: anon,
                    };
                    let mut text = format!(
                        "{:x}-{:x} {perms} {offset:08x} {} {inode}    {path}\nSize: {len} kB\n",
                        m.start, m.end, m.device
                    );
                    if let Some(kib) = rss {
                        text.push_str(&format!("Rss:   {kib} kB\n"));
                    }
                    if let Some(kib) = anon {
                        text.push_str(&format!("Anonymous:   {kib} kB\n"));
                    }
                    text.push_str("VmFlags: rd mr\n");
                    (m, text)
                },
            )
    }

    proptest! {
        #[test]
        fn smaps_text_reads_back_as_the_mappings_it_was_written_from(
            maps in proptest::collection::vec(mapping(), 0..12)
        ) {
            let text: String = maps.iter().map(|(_, t)| t.as_str()).collect();
            let read = parse_smaps(&text);
            let want: Vec<Mapping> = maps.into_iter().map(|(m, _)| m).collect();
            prop_assert_eq!(read, want);
        }

        #[test]
        fn any_text_reads_without_a_panic(text in "(?s).{0,400}", code in any::<usize>()) {
            let maps = parse_smaps(&text);
            for m in droppable(&maps, code) {
                prop_assert!(m.start < m.end && !m.writable && m.private);
                prop_assert_eq!(m.anonymous_kib, Some(0));
            }
        }

        #[test]
        fn lines_of_real_smaps_mixed_in_any_order_never_panic(
            lines in proptest::collection::vec(
                proptest::sample::select(SAMPLE_SMAPS.lines().collect::<Vec<_>>()), 0..40),
            code in any::<usize>(),
        ) {
            let text = lines.join("\n");
            let maps = parse_smaps(&text);
            let dropped = droppable(&maps, code);
            prop_assert!(dropped.iter().all(|m| m.anonymous_kib == Some(0) && !m.writable));
        }
    }
}
