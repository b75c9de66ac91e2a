//! Generates Tauri's context (configuration, capabilities, embedded UI) at compile time.

fn main() {
    tauri_build::build();
}
