"""The ``opro`` command: parse options → a spec and run options → the runner; errors → one
line.

Thin on purpose: every run command (``linreg``, ``tsp``, ``optimize``, and any kind added to
the registry) is generated from its kind's spec (``opro.cli.options``) and run by
``opro.cli.run_commands``; ``evaluate`` is ``opro.cli.evaluate``, the other commands
``opro.cli.tools``. Every ``OproError`` is printed as ``opro: error: <what> <fix>`` with its
exit code and no traceback; secrets from the
environment are redacted from anything printed. Progress, notices and errors go to stderr
through one display (``opro.progress_display``); stdout carries results only.
"""

from __future__ import annotations

import sys


def _interrupted_on_import(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    """Ctrl-C while the command's modules import (before ``main`` can catch it): one line,
    not a traceback. Installed for this module's import only, then put back."""
    sys.excepthook = _hook
    if issubclass(kind, KeyboardInterrupt):
        print("opro: interrupted", file=sys.stderr)
    else:
        _hook(kind, value, tb)


_hook, sys.excepthook = sys.excepthook, _interrupted_on_import

import argparse  # noqa: E402  (the imports a Ctrl-C may land in, from here on)
import contextlib  # noqa: E402
import difflib  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402
from typing import TYPE_CHECKING, Any, NoReturn  # noqa: E402

from opro.errors import ConfigError, Interrupted, OproError, redact  # noqa: E402

if TYPE_CHECKING:
    from opro.progress_display import Display


class _Parser(argparse.ArgumentParser):
    """opro's parser: no prefix matching (``--max-ex`` is not ``--max-examples``), a "did
    you mean" for a misspelled flag, errors on one line, and an ``examples:`` section at the
    end of ``--help`` (``examples=``: runnable lines, printed as written)."""

    def __init__(self, *args: Any, examples: Sequence[str] = (), **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.examples = tuple(examples)

    def format_help(self) -> str:
        text = super().format_help()
        if not self.examples:
            return text
        return text + "\nexamples:\n" + "".join(f"  {line}\n" for line in self.examples)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if args is not None and not self._subparsers:  # a command's flags: a misspelled one
            for arg in args:  # is named before a missing required flag would be
                if arg == "--":
                    break
                if arg.startswith("--") and arg.split("=", 1)[0] not in self._option_string_actions:
                    self.unrecognized([arg])
        return super().parse_known_args(args, namespace)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self._command_parser(parsed).unrecognized(extras)
        return parsed

    def _command_parser(self, parsed: argparse.Namespace) -> _Parser:
        """The parser of the command given (its flags are the ones misspelled), else this."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(str(getattr(parsed, action.dest, None)))
                if isinstance(chosen, _Parser):
                    return chosen._command_parser(parsed)
        return self

    def unrecognized(self, extras: Sequence[str]) -> NoReturn:
        flag = next((a for a in extras if a.startswith("-") and a not in ("-", "--")), None)
        if flag is None:
            self.error(f"unrecognized argument(s): {' '.join(extras)}")
        name = flag.split("=", 1)[0]
        options = [o for o in self._option_string_actions if o.startswith("--")]
        started = [o for o in options if o.startswith(name)]  # a prefix, once accepted
        close = started if len(started) == 1 else difflib.get_close_matches(name, options, 1)
        hint = f": did you mean {close[0]}?" if close else ""
        self.error(f"unrecognized argument {name}{hint}")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"opro: error: {message} (see `{self.prog} --help`)\n")


def add_output_arguments(parser: argparse.ArgumentParser, *, after_command: bool = False) -> None:
    """-v, -q and --log-json, accepted before the command and after it (where they have no
    default, so that they never override the same flag given before)."""
    off: Any = argparse.SUPPRESS if after_command else False
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=off, help="log retries and other details"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=off,
        help="no progress display (notices and errors still print)",
    )
    group.add_argument(
        "--log-json",
        action="store_true",
        default=off,
        help="progress, log records, notices and errors as JSON lines on stderr",
    )


def build_parser() -> argparse.ArgumentParser:
    # The commands' modules load here, not at import: `opro --version` needs none of them.
    from opro.cli import evaluate, export, run_commands, tools

    parser = _Parser(
        prog="opro",
        description="OPRO: large language models as optimizers (Yang et al., 2023).",
    )
    parser.add_argument("--version", action="store_true", help="print opro's version and exit")
    add_output_arguments(parser)
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    tools.add_model_commands(sub)
    run_commands.add_run_commands(sub)
    evaluate.add_evaluate_command(sub)
    tools.add_data_command(sub)
    run_commands.add_resume_command(sub)
    tools.add_cache_command(sub)
    tools.add_report_command(sub)
    export.add_export_command(sub)
    run_commands.add_sweep_command(sub)
    for command in sub.choices.values():  # keep last: every command takes them after it too
        add_output_arguments(command, after_command=True)
    return parser


def _secrets_in_environment() -> list[str]:
    return [v for k, v in os.environ.items() if k.upper().endswith(("KEY", "TOKEN", "SECRET"))]


def _is_text(arg: str) -> bool:
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _version_asked(argv: Sequence[str]) -> bool:
    """``opro --version`` (before any command): answered before the parser and the
    commands' modules are built, which is most of a command's start-up."""
    for arg in argv:
        if arg == "--version":
            return True
        if not arg.startswith("-"):  # a command: its own --version would be an error
            return False
    return False


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else list(argv))
    except KeyboardInterrupt:  # Ctrl-C before a command ran (parsing, imports): one line
        print("opro: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    if _version_asked(argv):
        from importlib.metadata import version

        print(f"opro {version('opro')}")
        return 0
    bad = next((arg for arg in argv if not _is_text(arg)), None)
    if bad is not None:
        # Bytes that are not UTF-8 arrive as lone surrogates, which no file, cache key or
        # terminal can take: refused here, in one line, not deep inside a run.
        print(
            f"opro: error: the argument {bad!a} is not valid UTF-8 text: give it as "
            "UTF-8 (check the shell's locale, or the file it was read from)",
            file=sys.stderr,
        )
        return 2
    from opro.progress_display import Mode, open_display

    try:
        parser = build_parser()
    except OproError as exc:  # the registered kinds cannot be read (an old install)
        print(f"opro: error: {exc}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(argv)
    if args.quiet and args.log_json:
        parser.error("-q/--quiet and --log-json cannot be combined")
    mode: Mode = "json" if args.log_json else "quiet" if args.quiet else "auto"
    # Code a run names (`--metric my_metrics:fn`, `fake:mod:fn`) is found where the user runs
    # opro, as with `python -m opro` or in a notebook; the `opro` script alone would not look
    # there. Appended, so a file in the directory never shadows an installed module.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    secrets = _secrets_in_environment()
    with _sigterm_as_ctrl_c(), open_display(mode, verbose=args.verbose, secrets=secrets) as display:
        args.display = display
        return _run(args, display, secrets)


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (``kill``, a scheduler's stop) takes the path of Ctrl-C: a run records that
    it was interrupted and says how to resume, a download removes its partial file. The
    signal is re-raised as SIGINT, so whoever handles Ctrl-C then (asyncio, or Python's
    KeyboardInterrupt) handles it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started with Ctrl-C ignored (`opro ... &` in a script): SIGTERM keeps its default,
        # ending the process (the run dir resumes from its last step), rather than becoming
        # an ignored SIGINT that would leave the process running.
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda _n, _f: signal.raise_signal(signal.SIGINT))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace, display: Display, secrets: list[str]) -> int:
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except OproError as exc:
        # Library errors name settings; here they become flags: the setting a ConfigError
        # is about, by its flag; in other text, a ConfigError's anywhere, any other's only
        # where our own text names one in `backticks`.
        from opro.cli.options import with_flags
        from opro.problems.spec import flag_of

        if isinstance(exc, ConfigError) and exc.setting is not None:
            text = with_flags(exc.render(flag_of))
        else:
            text = with_flags(str(exc), anywhere=isinstance(exc, ConfigError))
        message = redact(" ".join(text.split()), secrets)
        head = "opro" if isinstance(exc, Interrupted) else "opro: error"
        display.error(f"{head}: {message}", exc.exit_code)
        return exc.exit_code
    except KeyboardInterrupt:
        display.error("opro: interrupted", 130)
        return 130
    except BrokenPipeError:
        # The reader of stdout left (`opro ... --json | head`): stop quietly, as Unix tools
        # do; point stdout at /dev/null so that Python's flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by it
    except Exception as exc:
        if args.verbose:
            raise
        message = redact(f"{type(exc).__name__}: {exc}", secrets)
        display.error(
            f"opro: internal error: {message} (rerun with -v for the traceback, and please "
            "report it)",
            70,
        )
        return 70


sys.excepthook = _hook  # imported: ``main`` catches a Ctrl-C from now on


if __name__ == "__main__":
    sys.exit(main())
