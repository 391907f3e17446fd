//! jq programs in a process of their own. A run is bounded in steps and time (`program`), but
//! not in what one step asks of the allocator: `"x" * 1e15` asks for a petabyte at once, and a
//! failed allocation aborts the process that made it. So a broker runs its jq programs in a worker
//! process, the same binary started as `weir jq-worker`, under an address-space limit
//! ([`ADDRESS_SPACE`]). A program that asks for too much ends the worker, not the broker: the
//! call fails, and the next call starts a new worker. (EMQX can run jq as a port program, outside
//! its VM, for the same reason.)
//!
//! Requests and replies go through the worker's stdin and stdout, one at a time: a request is
//! the timeout in milliseconds (u64) and two length-prefixed texts, the program and its input; a
//! reply is a tag (0 for outputs, 1 for an error) and one length-prefixed text, the outputs as a
//! JSON array or the error's message. Lengths are u32, little-endian. The caller waits for a
//! reply until the run's timeout and [`GRACE`] have passed, then kills the worker.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustix::event::{poll, PollFd, PollFlags, Timespec};

use super::{on_jq_thread, Job};
use crate::value::Value;
use crate::EvalError;

/// The worker's address space: its 512 MiB jq stack (reserved, touched only as deep as values
/// nest), the allocator's reservations, and about 1 GiB for the values a program builds.
pub const ADDRESS_SPACE: u64 = 3 << 30;
/// The longest reply the caller reads, in bytes: far past any value a rule can publish.
const MAX_REPLY: usize = 64 * 1024 * 1024;
/// Time on top of a run's own timeout for the worker to start, compile and answer.
const GRACE: Duration = Duration::from_secs(2);

/// How to start a worker: set once, by the binary, with [`run_in_worker_process`].
static COMMAND: OnceLock<(PathBuf, Vec<OsString>)> = OnceLock::new();
/// The running worker, if one was started and has not failed since. Callers take turns.
static WORKER: Mutex<Option<Worker>> = Mutex::new(None);

/// From now on, `jq()` runs its programs in a worker process started as `program args`, which
/// must call [`serve`]. Without it (as in tests), programs run on a thread of this process.
pub fn run_in_worker_process(program: PathBuf, args: Vec<OsString>) {
    let _ = COMMAND.set((program, args));
}

/// Runs `job` in the worker, if [`run_in_worker_process`] set one up.
pub(super) fn run(job: &Job) -> Option<Result<Value, EvalError>> {
    COMMAND.get().map(|command| call(command, job))
}

/// A worker process and the two ends of its pipes.
struct Worker {
    child: Child,
    requests: ChildStdin,
    replies: ChildStdout,
}

fn call(command: &(PathBuf, Vec<OsString>), job: &Job) -> Result<Value, EvalError> {
    let failed = |why: String| EvalError::BadArgument(format!("jq: {why}"));
    let mut slot = WORKER.lock();
    // From now, not from the call: a caller may have waited its turn for a run as long.
    let deadline = Instant::now().checked_add(job.timeout.saturating_add(GRACE));
    let mut worker = match slot.take() {
        Some(worker) => worker,
        None => spawn(command).map_err(|e| failed(format!("cannot start its worker process: {e}")))?,
    };
    match exchange(&mut worker, job, deadline) {
        Ok(reply) => {
            *slot = Some(worker);
            reply.map_err(EvalError::BadArgument)
        }
        Err(e) => {
            let _ = worker.child.kill();
            let status = worker.child.wait().map_or_else(|e| e.to_string(), |s| s.to_string());
            tracing::warn!(program = %job.code, error = %e, worker = %status, "a jq program ended its worker process");
            Err(failed(format!(
                "the program ran out of its memory ({} GiB of address space) or its time: {e}",
                ADDRESS_SPACE >> 30
            )))
        }
    }
}

fn spawn((program, args): &(PathBuf, Vec<OsString>)) -> io::Result<Worker> {
    let mut child =
        Command::new(program).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let (Some(requests), Some(replies)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        return Err(io::Error::other("the worker's pipes are missing"));
    };
    Ok(Worker { child, requests, replies })
}

/// Sends `job` and reads the reply: the outputs as JSON decoded, or the program's error. An
/// `Err` means the worker is gone or late.
fn exchange(worker: &mut Worker, job: &Job, deadline: Option<Instant>) -> io::Result<Result<Value, String>> {
    let millis = u64::try_from(job.timeout.as_millis()).unwrap_or(u64::MAX);
    let mut request = Vec::with_capacity(16 + job.code.len() + job.input.len());
    request.extend_from_slice(&millis.to_le_bytes());
    put_text(&mut request, &job.code)?;
    put_text(&mut request, &job.input)?;
    worker.requests.write_all(&request)?;
    let mut tag = [0u8; 5];
    read_by(&mut worker.replies, &mut tag, deadline)?;
    let len = u32::from_le_bytes([tag[1], tag[2], tag[3], tag[4]]) as usize;
    if len > MAX_REPLY {
        return Err(io::Error::other(format!("a reply of {len} bytes")));
    }
    let mut text = vec![0; len];
    read_by(&mut worker.replies, &mut text, deadline)?;
    let text = String::from_utf8(text).map_err(io::Error::other)?;
    Ok(match tag[0] {
        0 => Value::from_json(text.as_bytes()).ok_or_else(|| "an output is not JSON, or is nested too deep".into()),
        _ => Err(text),
    })
}

/// Fills `buf` from `from`, waiting for input no later than `deadline`.
fn read_by(from: &mut ChildStdout, buf: &mut [u8], deadline: Option<Instant>) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let left = Timespec::try_from(left).map_err(io::Error::other)?;
            if poll(&mut [PollFd::new(from, PollFlags::IN)], Some(&left))? == 0 {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no reply within the run's timeout"));
            }
        }
        match from.read(&mut buf[filled..])? {
            0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the worker process exited")),
            n => filled += n,
        }
    }
    Ok(())
}

fn put_text(out: &mut Vec<u8>, text: &str) -> io::Result<()> {
    let len = u32::try_from(text.len()).map_err(|_| io::Error::other("a text over 4 GiB"))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

/// The worker's side: limits its own address space, then answers requests from stdin on stdout
/// until stdin ends, which it does when the process that started it exits, however it exits.
/// (Not `PR_SET_PDEATHSIG`: that fires when the *thread* that started the worker ends.) Called
/// by `weir jq-worker`.
pub fn serve() -> io::Result<()> {
    rustix::process::setrlimit(
        rustix::process::Resource::As,
        rustix::process::Rlimit { current: Some(ADDRESS_SPACE), maximum: Some(ADDRESS_SPACE) },
    )?;
    let (mut requests, mut replies) = (io::stdin().lock(), io::stdout().lock());
    loop {
        let mut millis = [0u8; 8];
        match requests.read_exact(&mut millis) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            other => other?,
        }
        let timeout = Duration::from_millis(u64::from_le_bytes(millis));
        let (code, input) = (read_text(&mut requests)?, read_text(&mut requests)?);
        let (tag, text) = match on_jq_thread(Job { code, input, timeout }).and_then(|v| Ok(v.to_json()?)) {
            Ok(json) if json.len() <= MAX_REPLY => (0u8, json),
            Ok(json) => (1, format!("jq: the outputs take {} bytes, more than {MAX_REPLY}", json.len())),
            Err(EvalError::BadArgument(message)) => (1, message),
            Err(e) => (1, format!("jq: {e}")),
        };
        let mut reply = vec![tag];
        put_text(&mut reply, &text)?;
        replies.write_all(&reply)?;
        replies.flush()?;
    }
}

fn read_text(from: &mut impl Read) -> io::Result<String> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len)?;
    let mut text = vec![0; u32::from_le_bytes(len) as usize];
    from.read_exact(&mut text)?;
    String::from_utf8(text).map_err(io::Error::other)
}
