"""Stand-in for pip's get-pip bootstrap script, for `ansible-test --venv` on machines that
cannot download it. ansible-test runs this as __main__ with pip-install arguments plus
get-pip's own --no-setuptools/--no-wheel flags. Installed by .ci/setup into
~/.ansible/test/cache/get_pip_<version>.py."""
import ensurepip
import os
import subprocess
import sys

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def main():
    ensurepip.bootstrap(upgrade=True, default_pip=True)
    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    if os.path.exists(CA_BUNDLE):
        args = ["--cert", CA_BUNDLE] + args
    sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))


if __name__ == "__main__":
    main()
