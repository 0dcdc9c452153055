package t::MDMServers;

# Fake external services for ngx_mdm tests: an APNs provider API
# (t/servers/apns.pl, HTTP/2 over TLS with client certificates) and a webhook
# receiver (t/servers/webhook.pl, HTTP/1.1), plus fake APNs push
# certificates.
#
#     use Test::Nginx::Socket 'no_plan';   # or Test::More
#     use t::MDM;                          # sets $ENV{TEST_NGINX_PKI}
#     use t::MDMServers;
#
#     my $push = make_push_cert();
#     my $apns = start_apns(client_ca => $push->{ca});
#     my $hook = start_webhook();
#     ... $apns->{url}, $apns->{server_ca}, $push->{cert}, $push->{key} ...
#     my @pushes = apns_wait($apns, 1);       # or apns_requests($apns)
#     apns_rules($apns, { tokens => { $tok => { status => 410 } } });
#
# Both servers listen on 127.0.0.1 only, on a free port, and are killed when
# the test file ends (END, or with the test process: PR_SET_PDEATHSIG).
# Files live in a temporary directory (kept with MDM_TEST_KEEP=1).
#
# Servers are hashrefs (blessed t::MDMServers::Server):
#   kind      'apns' or 'webhook'
#   port, pid
#   url       'https://127.0.0.1:PORT' (apns) / 'http://127.0.0.1:PORT'
#             (webhook; hook_url is url . '/webhook' for convenience)
#   log       the JSON-lines request log
#   rules     the rules file (apns_rules / webhook_rules write it)
#   dir       the server's own directory; stdout/stderr files in it
#   stderr    the server's stderr file (connection events, TLS failures)
#   apns only: cert, key (the server's TLS identity), server_ca (what a
#             client must trust: $TEST_NGINX_PKI/ca.pem), client_ca (what
#             the server trusts), max_streams
#
# Exported:
#   start_apns(%opt)          client_ca => PATH (default: the CA of
#                             make_push_cert()), max_streams => N (500),
#                             rules => \%rules (initial), cert/key/server_ca
#                             (default $ENV{TEST_NGINX_PKI}/server.pem,
#                             server.key, ca.pem; without TEST_NGINX_PKI a
#                             self-signed localhost/127.0.0.1 certificate is
#                             made), port => N (default: a free one)
#   apns_requests($srv)       parsed log lines (hashrefs), oldest first; in
#                             scalar context their number. "body" holds the exact
#                             bytes received (body_b64 in the file is decoded
#                             into it)
#   apns_wait($srv, $n [, $timeout=10])
#                             polls until the log has >= $n lines, returns
#                             apns_requests() (possibly fewer after timeout;
#                             scalar context: the number)
#   apns_rules($srv, \%rules) replaces the rules file atomically (undef or
#                             {} = everything 200); effective from the next
#                             request
#   apns_clear($srv)          empties the log
#   start_webhook(%opt)       rules => \%rules, port => N
#   webhook_requests, webhook_wait, webhook_rules, webhook_clear
#                             the same for the webhook server
#   stop_server($srv)         SIGTERM, then SIGKILL after 3 s; waits
#   make_push_cert(%opt)      a fake MDM push certificate, see below
#   apple_ca()                path of the throw-away "Apple" CA
#
# Log and rules formats are described at the top of t/servers/apns.pl and
# t/servers/webhook.pl.

use strict;
use warnings;

use Carp qw(croak);
use Config ();
use Cwd qw(abs_path);
use Exporter ();
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP ();
use MIME::Base64 qw(decode_base64);
use POSIX qw(WNOHANG strftime);
use Time::HiRes qw(time sleep);

our @ISA = ('Exporter');
our @EXPORT = qw(
    start_apns apns_requests apns_wait apns_rules apns_clear
    start_webhook webhook_requests webhook_wait webhook_rules webhook_clear
    stop_server make_push_cert apple_ca
);

# Test::Base evaluates `--- NAME eval` sections in Test::Base::Filter: the
# helpers must be callable there too
sub import {
    no strict 'refs';
    __PACKAGE__->export_to_level(1, @_);
    *{"Test::Base::Filter::$_"} = \&{$_} for @EXPORT;
}

# Processes, ports and files as t::MDM handles them (every suite loads it)
use t::MDM ();
sub _spawn { t::MDM::_spawn($_[0], $_[1], $_[2], 1) }
*_run = \&t::MDM::_run;
*_spew = \&t::MDM::_spew;
*_pick_port = \&t::MDM::_pick_port;

my $OwnerPid = $$;
my $ServersDir = dirname(abs_path(__FILE__)) . '/servers';
my $JSON = JSON::PP->new->utf8->canonical;

my $Dir;          # temp dir for everything of this module
my $Counter = 0;
my %Servers;      # pid => server
my %CA;           # name => { cert, key }
my $SelfServer;   # fallback TLS identity when TEST_NGINX_PKI is unset

sub _dir {
    return $Dir if $Dir;
    $Dir = tempdir('mdm-srv-XXXXXX', TMPDIR => 1,
                   CLEANUP => !$ENV{MDM_TEST_KEEP});
    chmod 0755, $Dir;
    return $Dir;
}

sub _slurp {
    my ($file) = @_;
    open my $fh, '<:raw', $file or return undef;
    local $/;
    my $data = <$fh>;
    return $data // '';
}


# prctl(2): the kernel kills our servers when the test process dies.
my $SysPrctl = $Config::Config{archname} =~ /^x86_64/  ? 157
             : $Config::Config{archname} =~ /^aarch64/ ? 167
             : undef;




# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------

sub _openssl_config {
    my ($db) = @_;
    return <<"EOF";
[req]
distinguished_name = req_dn
prompt             = no
string_mask        = utf8only

[req_dn]
CN = unused

[ca]
default_ca = apple_ca

[apple_ca]
database        = $db/index.txt
new_certs_dir   = $db/certs
serial          = $db/serial
default_md      = sha256
policy          = policy_any
unique_subject  = no
email_in_dn     = no
preserve        = yes
copy_extensions = none

[policy_any]
userId                 = optional
commonName             = supplied
organizationalUnitName = optional
organizationName       = optional
countryName            = optional

[v3_ca]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

# Like an MDM push certificate from identity.apple.com: TLS client
# authentication, Apple's "Apple Push Notification service SSL" markers.
[v3_push]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
1.2.840.113635.100.6.3.1 = ASN1:NULL
1.2.840.113635.100.6.3.2 = ASN1:NULL

[v3_server]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier   = hash
EOF
}

sub _asn1_time { strftime('%Y%m%d%H%M%SZ', gmtime(int $_[0])) }

sub _cnf {
    my $cnf = _dir() . '/openssl.cnf';
    return $cnf if -f $cnf;
    my $db = _dir() . '/ca-db';
    mkdir $db;
    mkdir "$db/certs";
    _spew("$db/index.txt", '');
    _spew($cnf, _openssl_config($db));
    return $cnf;
}

sub _serial {
    return sprintf('%08X%04X%04X', time() & 0x7fffffff, $$ & 0xffff,
                   ++$Counter & 0xffff);
}

sub _genkey {
    my ($path) = @_;
    _run('openssl', 'genpkey', '-algorithm', 'RSA',
         '-pkeyopt', 'rsa_keygen_bits:2048', '-out', $path);
    chmod 0644, $path;
}

sub _ca_sign {
    my (%a) = @_;
    my $cnf = _cnf();
    my $db = _dir() . '/ca-db';
    _spew("$db/serial", _serial() . "\n");
    _run('openssl', 'ca', '-batch', '-notext', '-config', $cnf,
         ($a{selfsign} ? ('-selfsign') : ('-cert', $a{ca_cert})),
         '-keyfile', $a{ca_key}, '-in', $a{csr}, '-out', $a{out},
         '-extensions', $a{ext},
         '-startdate', _asn1_time($a{start}),
         '-enddate', _asn1_time($a{end}));
    unlink $a{csr};
}

sub _subj {
    my (@rdn) = @_;
    my $s = '';
    while (my ($k, $v) = splice(@rdn, 0, 2)) {
        $v =~ s{([\\/])}{\\$1}g;
        $s .= "/$k=$v";
    }
    return $s;
}

# The throw-away "Apple" CA ('apple') and an unrelated one ('rogue').
sub _ca {
    my ($name) = @_;
    return $CA{$name} if $CA{$name};
    my $d = _dir();
    my ($cert, $key) = ("$d/$name-push-ca.pem", "$d/$name-push-ca.key");
    _genkey($key);
    my $cn = $name eq 'apple'
        ? 'Apple Application Integration 2 Certification Authority (test)'
        : 'Rogue Push CA (test)';
    _run('openssl', 'req', '-new', '-config', _cnf(), '-key', $key,
         '-subj', _subj(CN => $cn, OU => 'Apple Certification Authority',
                        O => 'Apple Inc. (test)', C => 'US'),
         '-out', "$d/$name-push-ca.csr");
    my $now = time;
    _ca_sign(selfsign => 1, ca_key => $key, csr => "$d/$name-push-ca.csr",
             out => $cert, ext => 'v3_ca',
             start => $now - 5 * 365 * 86400, end => $now + 20 * 365 * 86400);
    chmod 0644, $cert;
    return $CA{$name} = { cert => $cert, key => $key };
}

# apple_ca() -> path of the CA that signs make_push_cert() certificates.
sub apple_ca { return _ca('apple')->{cert} }

sub _uuid {
    my @b = map { int rand 256 } 1 .. 16;
    $b[6] = ($b[6] & 0x0f) | 0x40;
    $b[8] = ($b[8] & 0x3f) | 0x80;
    my $h = join '', map { sprintf '%02x', $_ } @b;
    return join '-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4),
                     substr($h, 16, 4), substr($h, 20);
}

# make_push_cert(%opt) -> {
#     cert    => path of the certificate PEM
#     key     => path of its unencrypted private key (PKCS#8 PEM, or
#                PKCS#1 "RSA PRIVATE KEY" with traditional => 1)
#     bundle  => path of a file with the certificate then the key
#     pem     => certificate PEM text, key_pem => key PEM text
#     topic   => the UID, e.g. com.apple.mgmt.External.<uuid>
#     uuid    => <uuid>
#     subject => '/UID=<topic>/CN=APSP:<uuid>/C=US'
#     ca      => path of the CA that signed it (apns.pl --client-ca)
# }
# Options:
#   topic => 'com.apple.mgmt.External.x'   the UID (default: a new uuid);
#                                          CN stays APSP:<uuid part>
#   uuid => '...'                          the uuid (topic derived from it)
#   days => N                              valid from 1 day ago for N days
#                                          (default 365)
#   expired => 1                           valid from 400 to 1 days ago
#   not_before => EPOCH, not_after => EPOCH
#   untrusted => 1                         signed by an unrelated CA (still
#                                          returned in "ca"; apns.pl trusting
#                                          apple_ca() rejects it)
#   traditional => 1                       PKCS#1 key PEM
sub make_push_cert {
    my (%o) = @_;
    my $ca = _ca($o{untrusted} ? 'rogue' : 'apple');
    my $uuid = $o{uuid};
    my $topic = $o{topic};
    if (!defined $uuid) {
        $uuid = defined $topic && $topic =~ /^com\.apple\.mgmt\.External\.(.+)$/
            ? $1 : _uuid();
    }
    $topic //= "com.apple.mgmt.External.$uuid";

    my $n = ++$Counter;
    my $d = _dir() . '/push';
    mkdir $d;
    my $base = "$d/push-$n";
    _genkey("$base.key");
    if ($o{traditional}) {
        _run('openssl', 'pkey', '-in', "$base.key", '-traditional',
             '-out', "$base.rsa.key");
        rename "$base.rsa.key", "$base.key" or die "rename: $!\n";
        chmod 0644, "$base.key";
    }
    my $subject = _subj(UID => $topic, CN => "APSP:$uuid", C => 'US');
    _run('openssl', 'req', '-new', '-config', _cnf(), '-key', "$base.key",
         '-subj', $subject, '-out', "$base.csr");
    my $now = time;
    my ($start, $end);
    if ($o{expired}) {
        ($start, $end) = ($now - 400 * 86400, $now - 86400);
    } else {
        $start = $now - 86400;
        $end = $now + ($o{days} // 365) * 86400;
    }
    $start = $o{not_before} if defined $o{not_before};
    $end = $o{not_after} if defined $o{not_after};
    _ca_sign(ca_cert => $ca->{cert}, ca_key => $ca->{key},
             csr => "$base.csr", out => "$base.pem", ext => 'v3_push',
             start => $start, end => $end);
    chmod 0644, "$base.pem";
    my ($pem, $key_pem) = (_slurp("$base.pem"), _slurp("$base.key"));
    _spew("$base.bundle.pem", $pem . $key_pem);
    chmod 0644, "$base.bundle.pem";
    return {
        cert => "$base.pem", key => "$base.key", bundle => "$base.bundle.pem",
        pem => $pem, key_pem => $key_pem,
        topic => $topic, uuid => $uuid, subject => $subject,
        ca => $ca->{cert},
    };
}

# The TLS identity of the fake APNs: the suite's PKI when t::MDM made one.
sub _server_identity {
    my $pki = $ENV{TEST_NGINX_PKI};
    if ($pki && -f "$pki/server.pem" && -f "$pki/server.key") {
        return ("$pki/server.pem", "$pki/server.key",
                -f "$pki/ca.pem" ? "$pki/ca.pem" : "$pki/server.pem");
    }
    if (!$SelfServer) {
        my $d = _dir();
        _genkey("$d/apns-server.key");
        _run('openssl', 'req', '-x509', '-new', '-config', _cnf(),
             '-extensions', 'v3_server', '-key', "$d/apns-server.key",
             '-subj', _subj(CN => 'localhost'), '-days', 3650,
             '-set_serial', '0x' . _serial(), '-out', "$d/apns-server.pem");
        chmod 0644, "$d/apns-server.pem";
        $SelfServer = [ "$d/apns-server.pem", "$d/apns-server.key",
                        "$d/apns-server.pem" ];
    }
    return @$SelfServer;
}

# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------

sub _write_rules {
    my ($file, $rules) = @_;
    if (!defined $rules) {
        unlink $file;
        return;
    }
    croak "rules must be a hashref" unless ref $rules eq 'HASH';
    my $tmp = "$file.tmp$$." . ++$Counter;
    _spew($tmp, $JSON->encode($rules));
    rename $tmp, $file or die "rename $tmp: $!\n";
}

sub _alive {
    my ($pid) = @_;
    return 0 unless $pid;
    my $r = waitpid($pid, WNOHANG);
    return 0 if $r == $pid || $r == -1;
    return 1;
}

# Starts one server process; retries on another port if it could not bind.
sub _start {
    my ($kind, $opt, $args) = @_;
    my $n = ++$Counter;
    my $dir = _dir() . "/$kind-$n";
    mkdir $dir or die "mkdir $dir: $!\n";
    chmod 0755, $dir;
    my $srv = bless {
        kind => $kind, dir => $dir,
        log => "$dir/requests.jsonl", rules => "$dir/rules.json",
        stdout => "$dir/stdout", stderr => "$dir/stderr",
        pidfile => "$dir/pid",
    }, 't::MDMServers::Server';
    _spew($srv->{log}, '');
    _write_rules($srv->{rules}, $opt->{rules}) if $opt->{rules};

    my $script = "$ServersDir/$kind.pl";
    my $last_err = '';
    for my $try (1 .. ($opt->{port} ? 1 : 5)) {
        my $port = $opt->{port} || _pick_port();
        unlink $srv->{stdout};
        my $pid = _spawn([ $^X, $script, '--port', $port,
                           '--log', $srv->{log}, '--rules', $srv->{rules},
                           '--pid', $srv->{pidfile}, @$args ],
                         $srv->{stdout}, $srv->{stderr});
        my $deadline = time + 15;
        while (time < $deadline) {
            if (!_alive($pid)) {
                $last_err = _slurp($srv->{stderr}) // '';
                last;
            }
            if ((_slurp($srv->{stdout}) // '') =~ /^listening/m) {
                my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                              PeerPort => $port,
                                              Proto => 'tcp', Timeout => 2);
                if ($s) {
                    close $s;
                    $srv->{port} = $port;
                    $srv->{pid} = $pid;
                    $Servers{$pid} = $srv;
                    return $srv;
                }
            }
            sleep 0.02;
        }
        if (_alive($pid)) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            $last_err = "did not start within 15 s\n"
                      . (_slurp($srv->{stderr}) // '');
        }
    }
    die "$kind server failed to start: $last_err";
}

sub start_apns {
    my (%opt) = @_;
    my ($cert, $key, $server_ca) = _server_identity();
    $cert = $opt{cert} if $opt{cert};
    $key = $opt{key} if $opt{key};
    $server_ca = $opt{server_ca} if $opt{server_ca};
    my $client_ca = $opt{client_ca} // apple_ca();
    croak "client_ca $client_ca not found" unless -f $client_ca;
    my $max = $opt{max_streams} // 500;
    my $srv = _start('apns', \%opt,
                     [ '--cert', $cert, '--key', $key,
                       '--client-ca', $client_ca, '--max-streams', $max ]);
    @$srv{qw(cert key server_ca client_ca max_streams)} =
        ($cert, $key, $server_ca, $client_ca, $max);
    $srv->{url} = "https://127.0.0.1:$srv->{port}";
    return $srv;
}

sub start_webhook {
    my (%opt) = @_;
    my $srv = _start('webhook', \%opt, []);
    $srv->{url} = "http://127.0.0.1:$srv->{port}";
    $srv->{hook_url} = "$srv->{url}/webhook";
    return $srv;
}

sub _requests {
    my ($srv) = @_;
    croak "not a server" unless ref $srv && $srv->{log};
    my $data = _slurp($srv->{log}) // '';
    my @out;
    for my $line (split /\n/, $data, -1) {
        next if $line eq '';
        my $e = eval { $JSON->decode($line) } or next;   # a partial line
        if (defined $e->{body_b64}) {
            $e->{body} = decode_base64(delete $e->{body_b64});
        } elsif (defined $e->{body}) {
            utf8::encode($e->{body});
        }
        push @out, $e;
    }
    return wantarray ? @out : scalar @out;
}

sub _wait {
    my ($srv, $n, $timeout) = @_;
    my $deadline = time + ($timeout // 10);
    while (1) {
        my @r = _requests($srv);
        return wantarray ? @r : scalar @r if @r >= $n || time >= $deadline;
        sleep 0.02;
    }
}

sub _check_kind {
    my ($srv, $kind) = @_;
    croak "expected a $kind server" unless ref $srv && ($srv->{kind} // '') eq $kind;
}

sub apns_requests    { _check_kind($_[0], 'apns');    goto &_requests }
sub webhook_requests { _check_kind($_[0], 'webhook'); goto &_requests }
sub apns_wait        { _check_kind($_[0], 'apns');    goto &_wait }
sub webhook_wait     { _check_kind($_[0], 'webhook'); goto &_wait }

sub apns_rules {
    my ($srv, $rules) = @_;
    _check_kind($srv, 'apns');
    _write_rules($srv->{rules}, $rules);
}

sub webhook_rules {
    my ($srv, $rules) = @_;
    _check_kind($srv, 'webhook');
    _write_rules($srv->{rules}, $rules);
}

sub _clear {
    my ($srv) = @_;
    truncate $srv->{log}, 0 or die "truncate $srv->{log}: $!\n";
}

sub apns_clear    { _check_kind($_[0], 'apns');    _clear($_[0]) }
sub webhook_clear { _check_kind($_[0], 'webhook'); _clear($_[0]) }

sub stop_server {
    my ($srv) = @_;
    return 0 unless $srv && $srv->{pid};
    my $pid = delete $srv->{pid};
    delete $Servers{$pid};
    return 0 unless _alive($pid);
    kill 'TERM', $pid;
    my $deadline = time + 3;
    while (time < $deadline) {
        return 1 if waitpid($pid, WNOHANG) == $pid;
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    return 1;
}

END {
    local $?;
    if ($$ == $OwnerPid) {
        for my $srv (values %Servers) {
            kill 'KILL', $srv->{pid} if $srv->{pid};
        }
        for my $srv (values %Servers) {
            waitpid($srv->{pid}, 0) if $srv->{pid};
        }
        %Servers = ();
    }
}


# the _ctl endpoints of the mocks of Apple's APIs (dep.pl, vpp.pl):
# POST /_ctl/WHAT with a JSON body, GET /_ctl/stats[?QUERY]; JSON back,
# a die naming LABEL otherwise (t/MDMDep.pm, t/MDMVpp.pm)
my $MockHttp;

sub mock_ctl {
    my ($srv, $label, $what, $body) = @_;
    require HTTP::Tiny;
    $MockHttp //= HTTP::Tiny->new(timeout => 30);
    my $r = $MockHttp->post("$srv->{url}/_ctl/$what", {
        headers => { 'Content-Type' => 'application/json' },
        content => $JSON->encode($body // {}) });
    die "$label $what: $r->{status} $r->{content}\n" unless $r->{success};
    return $JSON->decode($r->{content});
}

sub mock_stats {
    my ($srv, $label, $query) = @_;
    require HTTP::Tiny;
    $MockHttp //= HTTP::Tiny->new(timeout => 30);
    my $r = $MockHttp->get("$srv->{url}/_ctl/stats" . ($query ? "?$query" : ''));
    die "$label: $r->{status}\n" unless $r->{success};
    return $JSON->decode($r->{content});
}

package t::MDMServers::Server;

# Methods, for those who prefer them: $srv->requests, $srv->wait($n),
# $srv->set_rules(\%r), $srv->clear, $srv->stop.
sub requests  { t::MDMServers::_requests(@_) }
sub wait      { t::MDMServers::_wait(@_) }
sub set_rules { t::MDMServers::_write_rules($_[0]{rules}, $_[1]) }
sub clear     { t::MDMServers::_clear(@_) }
sub stop      { t::MDMServers::stop_server(@_) }

1;
