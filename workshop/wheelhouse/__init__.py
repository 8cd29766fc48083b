"""The offline room install: every wheel (and lesson 9's npm packages) for the laptops a room has, in one
folder a host copies to a USB stick (`make wheelhouse`); `make setup WHEELHOUSE=<folder>` installs from it
with no network."""
