//! Ctrl-C and SIGTERM as a flag: lab setup checks it between steps and tears down what it
//! made; a second signal exits at once (`netsleuth lab cleanup` then finds the leftovers).

use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};

/// Installs the handlers and returns the flag they set.
pub fn install() -> io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // Order matters: the conditional exit is registered first, so the first signal only
        // sets the flag and the second one (flag already set) exits with status 130.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag))?;
        signal_hook::flag::register(sig, Arc::clone(&flag))?;
    }
    Ok(flag)
}
