"""What the tests of the command lines share: running a command that
exits, and reading the help of each option."""
import pytest


def exits(main, argv, capsys, code: int) -> tuple[str, str]:
    """Run ``main(argv)``, which must end with exit status ``code``;
    its standard output and error."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == code
    captured = capsys.readouterr()
    return captured.out, captured.err


def refusal(main, argv, capsys) -> str:
    """The last line of what ``main(argv)`` printed when it refused its
    arguments: exit status 2 (argparse's), no traceback."""
    _, err = exits(main, argv, capsys, 2)
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def option_entries(help_text: str) -> list[str]:
    """The help of each option, one string each (``-h`` left out)."""
    entries = []
    for line in help_text.split("options:", 1)[1].splitlines():
        if line.startswith("  -"):
            entries.append(line)
        elif entries and line.startswith("   "):
            entries[-1] += " " + line.strip()
    return [e for e in entries if not e.lstrip().startswith("-h")]
