//! From a `command` / `argv` to the argv that is exec'd (DESIGN §10).
//!
//! A command line made only of plain words is split on blanks and exec'd directly, so the
//! pid steward reports, samples and signals is the program's own, and `PR_SET_PDEATHSIG`
//! reaches it. Anything a shell would interpret (quotes, `$`, globs, redirections, pipes,
//! lists, subshells, `~`, comments, braces, escapes, an environment assignment in front, a
//! shell keyword or builtin as the program) runs as `/bin/sh -c LINE`, so it means exactly
//! what it would mean in a terminal.

use crate::config::CommandSpec;

/// The shell that runs command lines that are not plain words.
pub const SHELL: &str = "/bin/sh";

/// Words that are shell syntax or builtins with no program of that name on `PATH`
/// (`cd dir`, `exec server`, `ulimit -n 4096`): as the first word they need the shell.
const SHELL_WORDS: &[&str] = &[
    "alias", "bg", "break", "case", "cd", "command", "continue", "declare", "do", "done", "elif",
    "else", "esac", "eval", "exec", "exit", "export", "fg", "fi", "for", "function", "getopts",
    "hash", "if", "in", "jobs", "let", "local", "read", "readonly", "return", "select", "set",
    "shift", "source", "then", "time", "times", "trap", "type", "typeset", "ulimit", "umask",
    "unalias", "unset", "until", "wait", "while",
];

/// The argv to exec for a command: plain words are split on blanks and exec'd directly;
/// anything with shell syntax runs as `/bin/sh -c LINE`. An `argv` list is used as is.
pub fn argv_for(spec: &CommandSpec) -> Vec<String> {
    match spec {
        CommandSpec::Argv(argv) => argv.clone(),
        CommandSpec::Line(line) => match plain_words(line) {
            Some(words) => words,
            None => vec![SHELL.to_string(), "-c".to_string(), line.clone()],
        },
    }
}

/// True when `line` would be exec'd directly rather than through the shell.
pub fn is_plain(line: &str) -> bool {
    plain_words(line).is_some()
}

/// The words of `line` when it is made only of plain words, else `None`.
fn plain_words(line: &str) -> Option<Vec<String>> {
    // Only space and tab separate words, as in the shell; a newline is a command separator.
    let words: Vec<&str> = line.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
    let first = words.first()?;
    if first.contains('=') || SHELL_WORDS.contains(first) {
        return None;
    }
    if words.iter().all(|w| w.chars().all(is_plain_char)) {
        Some(words.into_iter().map(str::to_string).collect())
    } else {
        None
    }
}

/// Characters that mean nothing to `/bin/sh` inside a word. Everything else (quotes, `$`,
/// backquotes, `*?[]`, `<>|;&()`, `~`, `#`, `{}`, `\`, `!`, newlines, control and
/// exotic whitespace characters) sends the line to the shell.
fn is_plain_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '-' | '_' | '.' | '/' | ':' | ',' | '+' | '@' | '%' | '=')
        || (!c.is_ascii() && c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Vec<String> {
        argv_for(&CommandSpec::Line(text.to_string()))
    }

    fn shell(text: &str) -> Vec<String> {
        vec!["/bin/sh".to_string(), "-c".to_string(), text.to_string()]
    }

    #[test]
    fn plain_words_are_split_and_execd_directly() {
        assert_eq!(
            line("python3 -m http.server 8080"),
            ["python3", "-m", "http.server", "8080"]
        );
        assert_eq!(line("  sleep\t300  "), ["sleep", "300"]);
        assert_eq!(
            line("./bin/server --port=8080 --host 127.0.0.1:80 a,b +x user@host 50%"),
            [
                "./bin/server",
                "--port=8080",
                "--host",
                "127.0.0.1:80",
                "a,b",
                "+x",
                "user@host",
                "50%"
            ]
        );
        assert_eq!(line("échos données"), ["échos", "données"]);
    }

    #[test]
    fn argv_is_used_as_is() {
        let argv = vec![
            "sh".to_string(),
            "-c".to_string(),
            "echo $HOME | cat".to_string(),
        ];
        assert_eq!(argv_for(&CommandSpec::Argv(argv.clone())), argv);
    }

    #[test]
    fn shell_syntax_goes_to_the_shell() {
        for text in [
            "echo 'quoted'",
            "echo \"quoted\"",
            "echo $HOME",
            "echo `date`",
            "ls *.rs",
            "ls file?.rs",
            "ls [ab].rs",
            "cat < in",
            "echo > out",
            "yes | head",
            "true; false",
            "sleep 1 &",
            "true && false",
            "(cd /tmp)",
            "ls ~",
            "echo a\nb",
            "echo a\\ b",
            "echo # comment",
            "echo {a,b}",
            "! true",
        ] {
            assert_eq!(
                line(text),
                shell(text),
                "{text:?} must go through the shell"
            );
        }
    }

    #[test]
    fn an_environment_assignment_in_front_goes_to_the_shell() {
        assert_eq!(line("PORT=8080 server"), shell("PORT=8080 server"));
        // `=` in a later word is an ordinary argument.
        assert_eq!(line("server --port=8080"), ["server", "--port=8080"]);
    }

    #[test]
    fn shell_keywords_and_builtins_go_to_the_shell() {
        for text in [
            "exec server",
            "cd /tmp",
            "ulimit -n 4096",
            "export A",
            "while true",
        ] {
            assert_eq!(line(text), shell(text));
        }
        // Programs that merely share a name with a builtin elsewhere stay direct.
        assert_eq!(line("echo hi"), ["echo", "hi"]);
        assert_eq!(line("sleep 1"), ["sleep", "1"]);
    }

    #[test]
    fn empty_and_exotic_whitespace_lines_go_to_the_shell() {
        assert_eq!(line(""), shell(""));
        assert_eq!(line("   "), shell("   "));
        assert_eq!(line("echo a\u{a0}b"), shell("echo a\u{a0}b"));
        assert_eq!(line("echo a\rb"), shell("echo a\rb"));
        assert!(is_plain("sleep 300"));
        assert!(!is_plain("sleep 300 &"));
    }
}
