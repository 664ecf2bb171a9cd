"""Entry point: parse, run the command, turn failures into one line and an exit status."""

from __future__ import annotations

import os
import sys

from jaxmdp.cli._args import build_parser, join_option_values


def _run(argv) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        from jaxmdp.cli._bench import cmd_bench

        return cmd_bench(argv[1:])
    parser = build_parser()
    args = parser.parse_args(join_option_values(argv, parser))
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "sweep":  # before JAX creates its backends
        from jaxmdp.cli._cluster import initialize

        initialize(args)
    import jax

    from jaxmdp.cli._commands import cmd_solve, cmd_sweep

    with jax.enable_x64(bool(args.x64)):
        return cmd_solve(args) if args.command == "solve" else cmd_sweep(args)


def main(argv=None) -> int:
    """Entry point of the `jaxmdp` console script. Returns the exit status.

    0: success; 1: a solve did not succeed (its status is printed) or the machine failed us
    (memory, files); 2: bad arguments (one line on stderr); 130: interrupted. Output piped
    into a reader that stops early (`jaxmdp solve | head -2`) ends quietly with 0.
    """
    try:
        code = _run(argv)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return code
    except BrokenPipeError:
        # The reader went away: nothing left to say. Point stdout at /dev/null so Python's
        # own flush at exit does not fail again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    except (ValueError, TypeError) as e:  # bad arguments (CliError, InvalidMDPError, ...)
        print(f"jaxmdp: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except (MemoryError, OSError, ImportError) as e:
        print(f"jaxmdp: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("jaxmdp: interrupted", file=sys.stderr)
        return 130


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


if __name__ == "__main__":
    raise SystemExit(main())
