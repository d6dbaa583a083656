//! CPU accounting: process CPU time (utime + stime from /proc, as getrusage reports
//! it), and the CPU time of the threads of one tokio runtime, so dcvd's share can be
//! told apart from the simulators running in the same process.

use std::sync::{Arc, Mutex};

/// Clock ticks per second of /proc times (USER_HZ; 100 on every Linux build in use).
const TICKS: f64 = 100.0;

fn stat_times(path: &str) -> Option<f64> {
    let s = std::fs::read_to_string(path).ok()?;
    // Fields after the `(comm)`: state is field 3; utime 14, stime 15.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    Some((ut + st) / TICKS)
}

/// CPU seconds used by this process so far (all threads, live and exited).
pub fn process_cpu() -> f64 {
    stat_times("/proc/self/stat").unwrap_or(0.0)
}

/// CPU seconds used by process `pid` so far.
pub fn pid_cpu(pid: u32) -> Option<f64> {
    stat_times(&format!("/proc/{pid}/stat"))
}

fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// A multi-thread runtime whose threads are recorded for CPU accounting.
pub struct Tracked {
    pub rt: tokio::runtime::Runtime,
    tids: Arc<Mutex<Vec<u32>>>,
}

impl Tracked {
    pub fn new(name: &str, workers: usize) -> Tracked {
        let tids = Arc::new(Mutex::new(Vec::new()));
        let t = tids.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name(name)
            .enable_all()
            // Blocking threads (key generation) stay alive so their CPU time is counted.
            .thread_keep_alive(std::time::Duration::from_secs(3600))
            .on_thread_start(move || {
                if let Some(id) = current_tid() {
                    t.lock().unwrap().push(id);
                }
            })
            .build()
            .expect("tokio runtime");
        Tracked { rt, tids }
    }

    /// CPU seconds of this runtime's threads that are still alive.
    pub fn cpu(&self) -> f64 {
        self.tids
            .lock()
            .unwrap()
            .iter()
            .filter_map(|t| stat_times(&format!("/proc/self/task/{t}/stat")))
            .sum()
    }
}
