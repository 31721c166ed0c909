//! Help texts: examples and exit codes shown after each subcommand's options.

pub const EXIT_CODES: &str = "\
Exit codes:
  0  the check passed
  1  the check ran and the target failed it (rejection, unreachable, expectation not met)
  2  usage or input error (bad flag, bad address, unreadable file)
  3  internal error
With --format nagios (probe, trace, run) they are the plugin states instead: 0 OK, 1 WARNING
(a threshold), 2 CRITICAL (the check failed, or a critical threshold), 3 UNKNOWN (usage or
configuration error).";

pub const RUN_EXAMPLES: &str = "\
Examples:
  cp scenarios/b-hybrid-inbound.toml mycorp.toml && $EDITOR mycorp.toml
  mxtrace run mycorp.toml                        # one line per expectation
  mxtrace run mycorp.toml --junit report.xml     # CI: JUnit XML, one test case per expectation
  mxtrace run mycorp.toml --json > before.json   # before a firewall change; then diff
  mxtrace run mycorp.toml --resolver 127.0.0.1:5353 --port 2525   # the same file in a lab

The overrides replace the file's values in every hop. No DATA is ever sent by `run`.

Exit codes:
  0  every expectation was met
  1  at least one was not
  2  usage or input error: a bad scenario file (reported as FILE:LINE:COL), an unwritable
     --junit path, a missing password variable
  3  internal error
With --format nagios (probe, trace, run) they are the plugin states instead: 0 OK, 1 WARNING
(a threshold), 2 CRITICAL (the check failed, or a critical threshold), 3 UNKNOWN (usage or
configuration error).";

pub const DIFF_EXAMPLES: &str = "\
Examples:
  mxtrace run mycorp.toml --json > before.json
  # ... the firewall or connector change ...
  mxtrace run mycorp.toml --json > after.json
  mxtrace diff before.json after.json
  mxtrace diff before.json after.json --latency-threshold 200ms --json

Exit codes:
  0  no regression (changes and improvements are listed)
  1  at least one regression: an address no longer reachable, TLS or STARTTLS lost, a
     certificate that no longer verifies or expires within 14 days, a stage now refused,
     latency beyond the threshold, an expectation now failing
  2  usage or input error (unreadable file, not mxtrace JSON)
  3  internal error";

pub const DEMO_EXAMPLES: &str = "\
Examples:
  mxtrace demo                                  # scenarios A-D, then every fault
  mxtrace demo --scenario B --fault connector-offline
  mxtrace demo --scenario D --verbose           # full transcripts
  mxtrace demo --json

Exit codes:
  0  every scenario passed and every fault was diagnosed as expected
  1  a scenario failed or a fault was not diagnosed as expected
  2  usage error (a fault that is not played in the scenario named)
  3  internal error (the lab could not start)";

pub const LAB_SERVE_EXAMPLES: &str = "\
Examples:
  mxtrace lab serve
  mxtrace lab serve --fault dirsync-stale --fault connector-offline
  mxtrace lab serve --bind 127.0.25.1 --port 2525 --dir /tmp/lab --json

Faults that change the same endpoint cannot be combined. The lab binds 127.0.0.0/8 only.
Exit codes: 0 stopped by Ctrl-C/SIGTERM, 2 usage error, 3 the lab could not start.";

pub const PROBE_EXAMPLES: &str = "\
Examples:
  mxtrace probe mail.contoso.com
  mxtrace probe mail.contoso.com --from probe@fabrikam.com --rcpt user@contoso.com
  SMTP_PASSWORD=... mxtrace probe smtp.office365.com:587 --starttls require \\
      --auth-user me@contoso.com --auth-password-env SMTP_PASSWORD \\
      --from me@contoso.com --rcpt someone@fabrikam.com
  mxtrace probe mail.contoso.com:465 --tls-implicit
  mxtrace probe 192.0.2.10 --ehlo probe.fabrikam.com --json
  mxtrace probe mail.contoso.com --format nagios --warning 2s --critical 5s --cert-warning 30d

Without --data the transaction ends with RSET and QUIT after RCPT: no mail is sent.

Exit codes:
  0  the check passed
  1  the check ran and the target failed it (rejection, unreachable, TLS required but missing)
  2  usage or input error
  3  internal error
With --format nagios (probe, trace, run) they are the plugin states instead: 0 OK, 1 WARNING
(a threshold), 2 CRITICAL (the check failed, or a critical threshold), 3 UNKNOWN (usage or
configuration error).";

pub const TRACE_EXAMPLES: &str = "\
Examples:
  mxtrace trace contoso.com
  mxtrace trace contoso.com --from probe@fabrikam.com --rcpt user@contoso.com
  mxtrace trace contoso.com --all --json
  mxtrace trace contoso.com --resolver 192.0.2.53 -4

The walk: MX records by preference (equal preferences in random order, RFC 5321 5.1; the order
used is shown), the domain's own A/AAAA when it has no MX, every address of a host before the
next host; on to the next address after a connection failure, a 4xx or a 5xx greeting; stop at
the first definitive answer (the transaction completed, or a 5xx). --all probes every address,
at most 8 at once.

Exit codes:
  0  the path accepts: the probe that decided passed (with --all: every address passed)
  1  it does not: DNS failure (NXDOMAIN, no MX and no address, SERVFAIL, timeout), null MX,
     every address failed, or a rejection
  2  usage or input error (bad flag, bad --resolver)
  3  internal error
With --format nagios (probe, trace, run) they are the plugin states instead: 0 OK, 1 WARNING
(a threshold), 2 CRITICAL (the check failed, or a critical threshold), 3 UNKNOWN (usage or
configuration error).";

pub const EXPLAIN_EXAMPLES: &str = "\
Examples:
  mxtrace explain \"550 5.4.1 Recipient address rejected: Access denied. AS(201806281)\" --stage rcpt
  mxtrace explain --json \"451 4.7.500 Server busy. Please try again later. (S77719)\"
  mxtrace explain $'550-5.7.26 Unauthenticated email\\n550 5.7.26 is not accepted'

Exit codes: 0 explained, 2 the text is not an SMTP reply or the stage is unknown.";

pub const REPORT_EXAMPLES: &str = "\
Examples:
  mxtrace trace contoso.com --rcpt user@contoso.com --json > path.json
  mxtrace report path.json --html path.html      # the same page as `trace ... --html path.html`
  mxtrace report before.json --html before.html  # any saved run, probe or trace result
  mxtrace report shard*.jsonl --html fleet.html  # a sweep's JSON lines: summary and table

The page is one file: inline CSS and SVG, no script, nothing fetched.

Exit codes:
  0  the report was written
  2  usage or input error (unreadable file, not mxtrace JSON, unwritable --html path)
  3  internal error";
