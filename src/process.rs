//! External commands as data, and the one seam that runs them.
//!
//! Every call of an external tool (kind, helm, docker) is first built as a [`Command`] by a pure
//! function, so its argv can be snapshot-tested, and is then run by [`run`] or [`run_unchecked`].
//! A failure keeps the argv, the exit code and the end of stderr, because those are what a
//! person needs to reproduce it by hand. The child's stdin is null, and the child is killed when
//! its timeout passes or when the future running it is dropped.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// How many trailing lines of stderr a [`ProcessError::Failed`] keeps.
pub const STDERR_TAIL_LINES: usize = 20;

/// One external command: the program, its arguments and extra environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Command {
    /// A command running `program` with no arguments.
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, argument: impl Into<String>) -> Self {
        self.args.push(argument.into());
        self
    }

    /// Appends several arguments.
    pub fn args<I, S>(mut self, arguments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(arguments.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child; a later value for the same key wins.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.env.retain(|(existing, _)| *existing != key);
        self.env.push((key, value.into()));
        self
    }

    /// The program followed by its arguments.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }

    /// The argv as one shell-quoted line, for messages a person can paste into a shell.
    pub fn display(&self) -> String {
        display_argv(&self.argv())
    }

    /// The PATH the child sees: its own `PATH` variable if set, else this process's.
    fn search_path(&self) -> Option<OsString> {
        self.env
            .iter()
            .rev()
            .find(|(key, _)| key == "PATH")
            .map(|(_, value)| OsString::from(value))
            .or_else(|| std::env::var_os("PATH"))
    }
}

/// Environment variables added to every command a provider runs.
///
/// Tests use it to put fake tools first on PATH and to point them at their state directory,
/// without changing the environment of the test process, which other tests share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    pub variables: Vec<(String, String)>,
}

impl Environment {
    /// No extra variables: commands see this process's environment.
    pub fn inherit() -> Self {
        Self::default()
    }

    /// Adds one variable.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.variables.push((key.into(), value.into()));
        self
    }

    /// The command with these variables added.
    pub fn apply(&self, command: Command) -> Command {
        self.variables
            .iter()
            .fold(command, |command, (key, value)| command.env(key, value))
    }
}

/// What a finished command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Why a command could not be run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("`{program}` is not installed or not on PATH")]
    NotFound { program: String },
    #[error("could not start `{}`", display_argv(.argv))]
    Spawn {
        argv: Vec<String>,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` exited with code {exit_code}: {}", display_argv(.argv), stderr.trim_end())]
    Failed {
        argv: Vec<String>,
        exit_code: i32,
        stderr: String,
    },
    #[error("`{}` did not finish within {}", display_argv(.argv), humantime::format_duration(*.after))]
    TimedOut { argv: Vec<String>, after: Duration },
}

impl ProcessError {
    /// The argv of the command that failed, when it got as far as being started.
    pub fn argv(&self) -> Option<&[String]> {
        match self {
            Self::NotFound { .. } => None,
            Self::Spawn { argv, .. } | Self::Failed { argv, .. } | Self::TimedOut { argv, .. } => {
                Some(argv)
            }
        }
    }
}

/// Runs `command`; a non-zero exit code is a [`ProcessError::Failed`].
pub async fn run(command: &Command, timeout: Duration) -> Result<Output, ProcessError> {
    let output = run_unchecked(command, timeout).await?;
    if output.exit_code == 0 {
        Ok(output)
    } else {
        Err(ProcessError::Failed {
            argv: command.argv(),
            exit_code: output.exit_code,
            stderr: stderr_tail(&output.stderr, STDERR_TAIL_LINES),
        })
    }
}

/// Runs `command` and returns its output whatever its exit code.
pub async fn run_unchecked(command: &Command, timeout: Duration) -> Result<Output, ProcessError> {
    let search_path = command.search_path();
    let Some(program) = find_program_in(&command.program, search_path.as_deref()) else {
        return Err(ProcessError::NotFound {
            program: command.program.clone(),
        });
    };
    let mut child = tokio::process::Command::new(program);
    child
        .args(&command.args)
        .envs(command.env.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = child.spawn().map_err(|source| ProcessError::Spawn {
        argv: command.argv(),
        source,
    })?;
    // Dropping the `wait_with_output` future on timeout drops the child, which kills it.
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(source)) => {
            return Err(ProcessError::Spawn {
                argv: command.argv(),
                source,
            });
        }
        Err(_) => {
            return Err(ProcessError::TimedOut {
                argv: command.argv(),
                after: timeout,
            });
        }
    };
    Ok(Output {
        exit_code: exit_code(output.status),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Where `program` would be found on this process's PATH.
pub fn find_program(program: &str) -> Option<PathBuf> {
    find_program_in(program, std::env::var_os("PATH").as_deref())
}

/// Where `program` would be found on `search_path`. A program containing a `/` is a path and is
/// only checked for being an executable file.
pub fn find_program_in(program: &str, search_path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_executable(&path).then_some(path);
    }
    std::env::split_paths(search_path?)
        .filter(|directory| !directory.as_os_str().is_empty())
        .map(|directory| directory.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The exit code, or 128 plus the signal number when a signal ended the child (as shells do).
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(-1)
}

/// The last `lines` lines of `stderr`.
pub fn stderr_tail(stderr: &str, lines: usize) -> String {
    let all: Vec<&str> = stderr.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

/// An argv as one line a POSIX shell reads back as the same words.
pub fn display_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|word| shell_quote(word))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(word: &str) -> String {
    let is_plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if is_plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_argv_and_quotes_for_a_shell() {
        let command = Command::new("docker")
            .args(["info", "--format"])
            .arg("{{.ServerVersion}}")
            .arg("it's")
            .arg("");
        assert_eq!(
            command.argv(),
            [
                "docker",
                "info",
                "--format",
                "{{.ServerVersion}}",
                "it's",
                ""
            ]
        );
        assert_eq!(
            command.display(),
            r"docker info --format '{{.ServerVersion}}' 'it'\''s' ''"
        );
    }

    #[test]
    fn a_later_environment_value_wins() {
        let command = Environment::inherit()
            .with("A", "1")
            .apply(Command::new("x").env("A", "0").env("B", "2"));
        assert_eq!(
            command.env,
            [
                ("B".to_owned(), "2".to_owned()),
                ("A".to_owned(), "1".to_owned())
            ]
        );
    }

    #[test]
    fn keeps_the_last_lines_of_stderr() {
        let stderr = (1..=30).map(|n| format!("line {n}\n")).collect::<String>();
        let tail = stderr_tail(&stderr, 20);
        assert!(tail.starts_with("line 11\n"));
        assert!(tail.ends_with("line 30"));
    }

    #[tokio::test]
    async fn a_missing_program_is_not_found() {
        let command = Command::new("orgmesh-no-such-program").env("PATH", "/nonexistent");
        let error = run(&command, Duration::from_secs(5)).await.unwrap_err();
        assert!(
            matches!(error, ProcessError::NotFound { ref program } if program == "orgmesh-no-such-program")
        );
    }

    #[tokio::test]
    async fn a_failure_keeps_argv_exit_code_and_stderr() {
        let command = Command::new("sh").args(["-c", "echo out; echo oops >&2; exit 3"]);
        let error = run(&command, Duration::from_secs(5)).await.unwrap_err();
        let ProcessError::Failed {
            argv,
            exit_code,
            stderr,
        } = &error
        else {
            panic!("expected Failed, got {error:?}");
        };
        assert_eq!(argv[0], "sh");
        assert_eq!(*exit_code, 3);
        assert_eq!(stderr, "oops");
        assert_eq!(
            error.to_string(),
            "`sh -c 'echo out; echo oops >&2; exit 3'` exited with code 3: oops"
        );
        let output = run_unchecked(&command, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(output.exit_code, 3);
        assert_eq!(output.stdout, "out\n");
    }

    #[tokio::test]
    async fn a_slow_command_times_out() {
        let command = Command::new("sleep").arg("30");
        let started = std::time::Instant::now();
        let error = run(&command, Duration::from_millis(200)).await.unwrap_err();
        assert!(matches!(error, ProcessError::TimedOut { .. }));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn stdin_is_null() {
        let command = Command::new("cat");
        let output = run(&command, Duration::from_secs(5)).await.unwrap();
        assert_eq!(output.stdout, "");
    }
}
