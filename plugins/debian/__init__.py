"""The ``debian_packages`` dataset: a Debian ``Packages`` file as a faceted catalog (work in progress)."""
