"""``python -m sipush``: the same as the ``sipush`` console script."""

from sipush.cli import main

if __name__ == "__main__":
    main()
