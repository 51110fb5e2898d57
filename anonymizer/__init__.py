"""The anonymizer: a reverse proxy serving anonymized shares from the anonymized-share Orthanc.

`routes` lists what it serves, `profile` what it removes (and the library choice),
`shared.pseudonyms` how UIDs and Orthanc ids are replaced, `proxy` the order of the
checks: `resolution` maps pseudonyms back within the share (`index`), then the answer is
streamed (`streams`), rewritten (`answers`) or rebuilt (`archives`). `endpoint` serves
it all as one plain ASGI endpoint; `upstream` and `transport` talk to Orthanc.
"""
