"""The anonymizer: a reverse proxy serving anonymized shares from the anonymized-share Orthanc.

`routes` lists what it serves, `profile` what it removes (and the library choice),
`pseudonyms` how UIDs and Orthanc ids are replaced, `proxy` the order of the checks.
"""
