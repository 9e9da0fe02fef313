//! Taking the terminal over and giving it back as it was: raw mode, the alternate
//! screen and a hidden cursor while `top` runs; all three undone on the way out,
//! also when something panics (the hook restores the terminal before the panic
//! message is printed, so the message is readable).

use std::io::{Stdout, stdout};
use std::sync::Once;

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::{Hide, Show};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};

/// The terminal while `top` owns it; dropping it restores the terminal.
pub struct Screen {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

pub fn enter() -> std::io::Result<Screen> {
    install_panic_hook();
    let terminal = Terminal::new(CrosstermBackend::new(stdout()))?;
    enable_raw_mode()?;
    let screen = Screen { terminal };
    execute!(stdout(), EnterAlternateScreen, Hide)?;
    Ok(screen)
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Undoes [`enter`]; harmless when the terminal is already restored.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), LeaveAlternateScreen, Show);
}

fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}
