"""SIP2 2.00 (3M Standard Interchange Protocol) for self-check machines and RFID gates.

:mod:`.codec` reads and writes the wire format (checksums, sequence numbers), :mod:`.session`
turns each message into the same circulation calls the desk makes, :mod:`.accounts` holds the
machines' accounts (one per machine, at a service point), :mod:`.server` is the TCP/TLS server
``qor sip2 serve`` runs.
"""
