//! `/proc/self/smaps` as the agent reads it to hand back the start's code pages
//! (`agent::memory`): no panic on any bytes, and what it would drop is only ever a
//! private, read-only mapping of one file that holds no anonymous page, whatever address
//! it is asked about.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let text = String::from_utf8_lossy(data);
        let maps = agent::memory::parse_smaps(&text);
        for m in &maps {
            assert!(m.start < m.end, "{m:?}");
        }
        let addresses = maps.iter().flat_map(|m| [m.start, m.end - 1, m.end]);
        for code in addresses.chain([0, usize::MAX]) {
            let dropped = agent::memory::droppable(&maps, code);
            let Some(first) = dropped.first() else {
                continue;
            };
            for m in &dropped {
                assert!(m.private && !m.writable, "{m:?}");
                assert_eq!(m.anonymous_kib, Some(0), "{m:?}");
                assert!(m.inode != 0 && m.inode == first.inode && m.device == first.device);
            }
        }
    });
}
