//! The first bytes of the app's file as the agent reads them when it cannot start it
//! (`agent::launch`): no panic on any bytes; an interpreter is taken from the `#!` line
//! alone, a loader from inside the head, never a NUL in either.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = agent::launch::looks_binary(data);
        match agent::launch::read_head(data) {
            agent::launch::Head::Script { interpreter, .. } => {
                assert!(data.starts_with(b"#!"));
                assert!(interpreter.len() < data.len());
                assert!(!interpreter.contains(&b'\n'));
            }
            agent::launch::Head::Elf { loader, machine } => {
                assert!(data.starts_with(b"\x7fELF"));
                let _ = agent::launch::machine_name(machine);
                if let Some(loader) = loader {
                    assert!(!loader.is_empty() && loader.len() <= data.len());
                    assert!(!loader.contains(&0));
                }
            }
            agent::launch::Head::Other => {}
        }
    });
}
