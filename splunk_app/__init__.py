"""The lsassdump Splunk app: its files (bin/, default/, lib/, metadata/) and the build that packs them.

This package file, build.py and savedsearches.py are build tooling and stay out of the tarball.
"""
