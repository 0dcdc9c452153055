package t::MDM;

# Test support for ngx_mdm: a private Redis, a throw-away PKI, device-style
# request signing, test vectors and a few HTTP helpers, plus Test::Nginx
# block sections that use them.
#
# Load it from a .t file right after the harness:
#
#     use Test::Nginx::Socket 'no_plan';
#     use t::MDM;
#
# It works with upstream Test::Nginx::Socket and with our subset in t/lib,
# because it only uses add_block_preprocessor() and add_response_body_check()
# (and repeat_each() when available). If Test::Nginx::Socket is not loaded
# first, the functions still work but the block sections below are ignored.
#
# What happens when this module loads, once per test file:
#
#   * redis-server starts on 127.0.0.1 on a free port, in a temporary
#     directory, with no persistence. $ENV{TEST_NGINX_REDIS_PORT} is set, so
#     nginx.conf can use $TEST_NGINX_REDIS_PORT. The server is killed in END.
#   * A test PKI is generated with the openssl CLI into a temporary directory.
#     $ENV{TEST_NGINX_PKI} holds the path, so nginx.conf can use
#     $TEST_NGINX_PKI/identity-ca.pem. Files:
#       ca.pem ca.key               root CA
#       int.pem int.key             intermediate CA, signed by the root; it
#                                   issues the device certificates
#       identity-ca.pem             root + intermediate (the bundle the server
#                                   is configured with)
#       server.pem server.key       CN=localhost, SAN IP:127.0.0.1 and
#                                   DNS:localhost, signed by the root
#       rogue-ca.pem rogue-ca.key   an unrelated root CA
#       shared.key                  RSA key reused by device_cert(shared_key=>1)
#       devices/                    certificates made by device_cert()
#     The CAs are valid from 5 years ago to 20 years from now, so an "expired"
#     device certificate was valid inside its issuer's lifetime.
#   * The exported helpers are also installed in package Test::Base::Filter,
#     where Test::Base evaluates `--- NAME eval` sections. So eval sections can
#     call them without a package name, for example:
#         --- request eval
#         "PUT /mdm/checkin\n" . plist_set(vector("nanomdm/mdm/testdata/Authenticate.2.plist"), UDID => "U1")
#
# Set MDM_TEST_KEEP=1 to keep the temporary directories after the run.
#
# Block sections
# --------------
#
# --- signed_by: NAME [OPTION ...]
#     Adds "Mdm-Signature: <base64 CMS>" to --- more_headers (the section is
#     created if missing; existing headers are kept). The signature covers
#     the body exactly as the harness sends it: for `--- request`, leading
#     whitespace and `#` lines are dropped, the first line is "METHOD URI",
#     and the rest, trimmed of leading and trailing whitespace, is the body
#     (not trimmed if more_headers sets Content-Length, as upstream does).
#     `--- request eval` works the same way with the evaluated string.
#     NAME is a device_cert() name. OPTIONs are device_cert() options as
#     words: `expired`, `issuer=rogue`, `not_before_in=30`, `shared_key`,
#     `no_client_auth`... so `--- signed_by: old expired` works without Perl.
#     With several requests (`--- request eval` arrayref, or
#     `--- pipelined_requests eval`), each request gets its own signature and
#     more_headers becomes an arrayref with one header block per request.
#     `--- signed_by eval: ["dev1", undef, "dev2"]` picks one signer per
#     request (undef: leave that request unsigned).
#     With a single request, more_headers stays a plain string.
#
# --- signature_opts: ber noattr chain
#     Options for mdm_signature(), separated by spaces or commas:
#     `ber` (indefinite-length BER, still detached), `noattr` (no signed
#     attributes), `chain` (also include the issuer certificate).
#
# --- redis_setup
#     One Redis command per line, split like a shell would split it
#     (Text::ParseWords::shellwords). Blank and `#` lines are ignored. They
#     run before the block; a Redis error dies with the block name. If the
#     harness repeats the block (repeat_each), they run again before each
#     repetition. `--- redis_setup eval` may give an arrayref of commands
#     (arrayrefs or strings) or a coderef.
#     Every block starts with Redis running, even if an earlier block
#     stopped it.
#
# --- redis_check
#     One check per line, evaluated after the LAST request of the block:
#         CMD arg ... => expected
#     The command is split with shellwords. The expected value is one of:
#         text        the reply must equal it (integer replies compare as text)
#         ""          the empty string
#         (nil)       a nil reply
#         ~ REGEX     the reply must match REGEX
#         a,b,c       for array replies, the elements joined by commas;
#                     `(nil)` stands for a nil element and `(empty)` for an
#                     empty array
#     A Redis error reply compares as "(error) <message>". Each line is one
#     test named "<block name> - redis_check: CMD arg ...".
#     `--- redis_check eval` takes an arrayref of [ CMD, EXPECTED ] pairs.
#     CMD is an arrayref (or a string to split). EXPECTED is a string (is),
#     a qr// (like), undef (nil), an arrayref (is_deeply), or a coderef
#     called with the reply that must return true.
#
# --- after_each eval
#     An arrayref of coderefs (elements may be undef). Element i is called as
#     $code->($block, $response_body, $req_idx, $repetition) after request i,
#     before any redis_check. Use it to stop or start Redis between the
#     requests of one block, or to fire a burst with concurrent_requests().
#     A single coderef runs after every request. If a hook dies, that is
#     reported as a failed test.
#
# Any `--- NAME eval` section whose eval died makes the block die with the
# Perl error (Test::Base would otherwise use the error text as the value).
#
# Exported functions (details above each sub below):
#     redis redis_try redis_stop redis_start redis_flush redis_port
#     pki_dir device_cert cert_sha256 mdm_signature rfc9440_header
#     escaped_pem_header cert_bindings cert_unbind_all
#     vector vectors_dir plist_set plist_get
#     concurrent_requests http_request parse_http_response

use strict;
use warnings;

use Carp qw(croak);
use Config ();
use Cwd qw(abs_path);
use Digest::SHA qw(sha256_hex);
use Exporter ();
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use MIME::Base64 qw(encode_base64 decode_base64);
use POSIX qw(WNOHANG strftime);
use Scalar::Util qw(blessed);
use Test::More ();
use Text::ParseWords qw(shellwords);
use Time::HiRes qw(time sleep);

our @ISA = ('Exporter');
our @EXPORT = qw(
    redis redis_try redis_stop redis_start redis_flush redis_port
    pki_dir device_cert cert_sha256 mdm_signature rfc9440_header
    escaped_pem_header cert_bindings cert_unbind_all
    vector vectors_dir plist_set plist_get
    concurrent_requests http_request parse_http_response
    mdm_defaults checkin_request mdm_server_defaults
);

# Seconds to wait for a Redis reply; `local` it for blocking commands.
our $RedisTimeout = 10;

# The process that loaded us owns Redis and the temp dirs. The harness and the
# tests fork (TCP servers, bursts); those children must not kill Redis when
# they exit.
my $OwnerPid = $$;

my $RepoRoot = dirname(dirname(abs_path(__FILE__)));

my $Work;            # temp dir for Redis and scratch files
my $RedisPort;
my $RedisPid;
my $Conn;            # { sock, buf, pid, fresh }

my $Pki;             # PKI directory ($ENV{TEST_NGINX_PKI})
my %Certs;           # device_cert() cache, by name
my $Counter = 0;     # serial numbers and unique file names


# ---------------------------------------------------------------------------
# Loading and cleanup
# ---------------------------------------------------------------------------

my $HooksRegistered;

sub import {
    my $class = shift;

    __PACKAGE__->export_to_level(1, $class, @_);

    # Test::Base evaluates `--- NAME eval` sections in Test::Base::Filter, so
    # the helpers must exist there too, or eval sections would need
    # `t::MDM::` everywhere.
    {
        no strict 'refs';
        for my $f (@EXPORT) {
            *{"Test::Base::Filter::$f"} = \&{$f}
                unless defined &{"Test::Base::Filter::$f"};
        }
    }

    _register_hooks();
}

sub _register_hooks {
    return if $HooksRegistered;

    no strict 'refs';
    if (defined &{'Test::Nginx::Socket::add_block_preprocessor'}) {
        &{'Test::Nginx::Socket::add_block_preprocessor'}(\&preprocess_block);
        $HooksRegistered = 1;
    }
    if (defined &{'Test::Nginx::Socket::add_response_body_check'}) {
        &{'Test::Nginx::Socket::add_response_body_check'}(\&check_response);
    }
}

sub _init {
    $Work = tempdir('mdm-test-XXXXXX', TMPDIR => 1,
                    CLEANUP => !$ENV{MDM_TEST_KEEP});
    chmod 0755, $Work;

    # Ctrl-C or a harness timeout must not leave redis-server behind: turn
    # the signal into cleanup + the default action. Keep handlers others set.
    for my $sig (qw(INT TERM HUP)) {
        next if $SIG{$sig} && $SIG{$sig} ne 'DEFAULT';
        $SIG{$sig} = sub {
            _cleanup() if $$ == $OwnerPid;
            $SIG{$sig} = 'DEFAULT';
            kill $sig, $$;
        };
    }

    _start_redis_first_time();
    _init_pki();
}

sub _cleanup {
    _disconnect();
    return unless $RedisPid;
    kill 'KILL', $RedisPid;
    waitpid($RedisPid, 0);
    undef $RedisPid;
}

END {
    # waitpid() would otherwise overwrite the test's exit status.
    local $?;
    _cleanup() if $$ == $OwnerPid;
}


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

# prctl(2) syscall number, to tie redis-server's life to ours (see _spawn).
# (syscall.ph would define hundreds of subs in package main.)
my $SysPrctl = $Config::Config{archname} =~ /^x86_64/  ? 157
             : $Config::Config{archname} =~ /^aarch64/ ? 167
             : undef;

# Starts @$cmd without a shell, stdout and stderr to files. Returns the pid.
# With $die_with_parent, the kernel SIGKILLs the child when this process
# dies, even without END (SIGKILL, a crash): no redis-server outlives its
# test file.
sub _spawn {
    my ($cmd, $out, $err, $die_with_parent) = @_;

    my $parent = $$;
    my $pid = fork;
    die "fork: $!\n" unless defined $pid;

    if ($pid == 0) {
        if ($die_with_parent && $^O eq 'linux' && defined $SysPrctl) {
            syscall($SysPrctl, 1, 9);    # PR_SET_PDEATHSIG, SIGKILL
            POSIX::_exit(1) if getppid() != $parent;    # already gone
        }
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>', $err or POSIX::_exit(126);
        { no warnings 'exec'; exec { $cmd->[0] } @$cmd; }
        print STDERR "exec $cmd->[0]: $!\n";
        POSIX::_exit(127);
    }

    return $pid;
}

sub _slurp {
    my ($file) = @_;
    open my $fh, '<:raw', $file or return undef;
    local $/;
    my $data = <$fh>;
    return defined $data ? $data : '';
}

sub _spew {
    my ($file, $data) = @_;
    open my $fh, '>:raw', $file or die "write $file: $!\n";
    print {$fh} $data;
    close $fh or die "write $file: $!\n";
}

# run_cmd(@cmd) -> ($exit_status, $stdout, $stderr). Never dies on a
# non-zero exit; for tests that expect a command to fail.
sub run_cmd {
    my @cmd = @_;
    my $n = ++$Counter;
    my ($out, $err) = ("$Work/cmd-$n.out", "$Work/cmd-$n.err");
    my $pid = _spawn(\@cmd, $out, $err);
    waitpid($pid, 0);
    my $status = $? >> 8;
    my @res = ($status, _slurp($out), _slurp($err));
    unlink $out, $err;
    return @res;
}

# Runs a command that must succeed; dies with its stderr otherwise.
sub _run {
    my @cmd = @_;
    my ($status, $out, $err) = run_cmd(@cmd);
    die "command failed ($status): @cmd\n$err" if $status != 0;
    return $out;
}

# Runs several commands at once (RSA key generation dominates start-up time
# and the machine has more than one core).
sub _run_parallel {
    my @cmds = @_;
    my @jobs;
    for my $cmd (@cmds) {
        my $n = ++$Counter;
        my ($out, $err) = ("$Work/cmd-$n.out", "$Work/cmd-$n.err");
        push @jobs, [ _spawn($cmd, $out, $err), $cmd, $err ];
    }
    my @failed;
    for my $job (@jobs) {
        waitpid($job->[0], 0);
        push @failed, "@{$job->[1]}\n" . (_slurp($job->[2]) // '') if $?;
    }
    die "command failed: " . join("\n", @failed) if @failed;
}


# ---------------------------------------------------------------------------
# Redis server
# ---------------------------------------------------------------------------

# redis_port() -> the port of this test file's Redis.
sub redis_port { return $RedisPort }

sub _find_redis_server {
    for my $dir (split /:/, $ENV{PATH} // '') {
        return "$dir/redis-server" if -x "$dir/redis-server";
    }
    die "redis-server not found in PATH (Debian: apt-get install redis-server)\n";
}

# A port outside the Linux ephemeral range (32768-60999), so it cannot be
# taken by an outgoing connection while Redis is stopped for a test.
sub _pick_port {
    for (1 .. 100) {
        my $port = 20000 + int(rand(12000));
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $port, Proto => 'tcp',
                                      Listen => 1, ReuseAddr => 1)
            or next;
        close $s;
        return $port;
    }
    die "no free TCP port found\n";
}

# Starts redis-server on $port and waits until *our* process answers (a
# parallel test file could hold the port). Returns 1, or 0 if it exited.
sub _spawn_redis {
    my ($port) = @_;

    my $log = "$Work/redis.log";
    my $pid = _spawn([ _find_redis_server(),
                       '--port', $port, '--bind', '127.0.0.1',
                       '--save', '', '--appendonly', 'no',
                       '--daemonize', 'no', '--dir', $Work,
                       '--logfile', '' ],
                     "$log.out", $log, 1);
    $RedisPid = $pid;

    my $deadline = time + 10;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            undef $RedisPid;
            return 0;
        }
        my $info = eval {
            my $c = _connect($port);
            _roundtrip($c, 'INFO', 'server');
        };
        return 1 if defined $info && !ref $info
                    && $info =~ /^process_id:$pid\r?$/m;
        sleep 0.02;
    }

    kill 'KILL', $pid;
    waitpid($pid, 0);
    undef $RedisPid;
    die "redis-server on port $port did not answer within 10 s:\n"
        . (_slurp("$log.out") // '') . (_slurp($log) // '');
}

sub _start_redis_first_time {
    for (1 .. 5) {
        my $port = _pick_port();
        if (_spawn_redis($port)) {
            $RedisPort = $port;
            $ENV{TEST_NGINX_REDIS_PORT} = $port;
            return;
        }
    }
    die "redis-server failed to start:\n" . (_slurp("$Work/redis.log.out") // '');
}

# Forked helpers (bursts, fake servers) may use redis(), but stopping or
# starting the server from them would leave the owner's bookkeeping wrong.
sub _assert_owner {
    croak "$_[0]: only the test process that loaded t::MDM manages Redis"
        if $$ != $OwnerPid;
}

# redis_stop() kills the server (SIGKILL, like a crash: no clean close for
# clients) and returns once the port refuses connections.
sub redis_stop {
    _assert_owner('redis_stop');
    _disconnect();
    return unless $RedisPid;

    kill 'KILL', $RedisPid;
    waitpid($RedisPid, 0);
    undef $RedisPid;

    my $deadline = time + 5;
    while (time < $deadline) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $RedisPort, Proto => 'tcp',
                                      Timeout => 1);
        return 1 unless $s;
        close $s;
        sleep 0.01;
    }
    die "redis port $RedisPort still accepts connections after redis_stop\n";
}

# redis_start() starts the server again on the same port (empty: no
# persistence) and waits until it answers. No-op if it is running.
sub redis_start {
    _assert_owner('redis_start');
    return $RedisPort if _redis_alive();
    _disconnect();
    for (1 .. 3) {
        # The port may briefly be unbindable right after a kill.
        return $RedisPort if _spawn_redis($RedisPort);
        sleep 0.1;
    }
    die "redis-server failed to restart on port $RedisPort:\n"
        . (_slurp("$Work/redis.log.out") // '');
}

sub _redis_alive {
    return 0 unless $RedisPid;
    if (waitpid($RedisPid, WNOHANG) == $RedisPid) {
        undef $RedisPid;    # it died on its own
        return 0;
    }
    return 1;
}

# redis_flush() -> FLUSHALL.
sub redis_flush { return redis('FLUSHALL') }


# ---------------------------------------------------------------------------
# Redis client (RESP2)
# ---------------------------------------------------------------------------

{
    # An error reply. Stringifies to the message, e.g.
    # "ERR unknown command 'FOO', with args beginning with: ".
    package t::MDM::RedisError;
    use overload '""' => sub { $_[0]{message} }, fallback => 1;
    sub new { my ($class, $msg) = @_; return bless { message => $msg }, $class }
    sub message { return $_[0]{message} }
}

sub _is_error { return blessed($_[0]) && $_[0]->isa('t::MDM::RedisError') }

# Perl strings with wide characters go out as UTF-8 (what print() to a socket
# does); everything else is sent byte for byte.
sub _bytes {
    my ($s) = @_;
    $s = '' unless defined $s;
    if (utf8::is_utf8($s)) {
        utf8::downgrade($s, 1) or utf8::encode($s);
    }
    return $s;
}

sub _connect {
    my ($port) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Proto => 'tcp',
                                     Timeout => 5)
        or die "connect to redis 127.0.0.1:$port: $!\n";
    $sock->autoflush(1);
    return { sock => $sock, buf => '', pid => $$, fresh => 1 };
}

sub _disconnect {
    # Closing a connection inherited through fork would not hurt the parent
    # (no FIN is sent while the parent holds it), so just drop it.
    undef $Conn;
}

sub _conn {
    undef $Conn if $Conn && $Conn->{pid} != $$;
    $Conn ||= _connect($RedisPort);
    return $Conn;
}

sub _encode_command {
    my @args = map { _bytes($_) } @_;
    my $out = '*' . scalar(@args) . "\r\n";
    $out .= '$' . length($_) . "\r\n$_\r\n" for @args;
    return $out;
}

sub _write_all {
    my ($c, $data) = @_;
    local $SIG{PIPE} = 'IGNORE';    # a dead server must not kill the test
    my $off = 0;
    while ($off < length $data) {
        my $n = syswrite($c->{sock}, $data, length($data) - $off, $off);
        die "write to redis: $!\n" unless defined $n;
        $off += $n;
    }
}

sub _fill {
    my ($c) = @_;
    my $sel = IO::Select->new($c->{sock});
    $sel->can_read($RedisTimeout)
        or die "redis reply timed out after ${RedisTimeout}s\n";
    my $n = sysread($c->{sock}, $c->{buf}, 65536, length $c->{buf});
    die "read from redis: $!\n" unless defined $n;
    die "redis closed the connection\n" if $n == 0;
    $c->{got_bytes} = 1;
}

sub _read_line {
    my ($c) = @_;
    my $i;
    _fill($c) while ($i = index($c->{buf}, "\r\n")) < 0;
    my $line = substr($c->{buf}, 0, $i);
    substr($c->{buf}, 0, $i + 2, '');
    return $line;
}

sub _read_reply {
    my ($c) = @_;
    my $line = _read_line($c);
    my $type = substr($line, 0, 1, '');

    return $line if $type eq '+';
    return t::MDM::RedisError->new($line) if $type eq '-';
    return 0 + $line if $type eq ':';

    if ($type eq '$') {
        return undef if $line < 0;
        _fill($c) while length($c->{buf}) < $line + 2;
        my $data = substr($c->{buf}, 0, $line);
        substr($c->{buf}, 0, $line + 2, '');
        return $data;
    }

    if ($type eq '*') {
        return undef if $line < 0;
        return [ map { _read_reply($c) } 1 .. $line ];
    }

    die "redis protocol error: unexpected '$type$line'\n";
}

sub _roundtrip {
    my ($c, @cmd) = @_;
    $c->{got_bytes} = 0;
    _write_all($c, _encode_command(@cmd));
    return _read_reply($c);
}

# One command on the shared connection. A reused connection may be stale
# (Redis was restarted, or it closed us with CLIENT KILL): if it breaks
# before any reply byte arrived, the server closed it before reading our
# command, so it is safe to reconnect and send the command once more. A
# timeout is not retried: the server may still be running the command.
sub _command {
    my @cmd = @_;
    croak "redis: no command given" unless @cmd;

    my $c = _conn();
    my $was_fresh = $c->{fresh};
    $c->{fresh} = 0;

    my $reply = eval { _roundtrip($c, @cmd) };
    return $reply unless $@;

    my $err = $@;
    _disconnect();
    die $err if $was_fresh || $c->{got_bytes} || $err =~ /timed out/;

    $c = _conn();
    $c->{fresh} = 0;
    $reply = eval { _roundtrip($c, @cmd) };
    return $reply unless $@;
    $err = $@;
    _disconnect();
    die $err;
}

# redis(@cmd) -> the reply: a scalar for status, integer and bulk replies,
# an arrayref for arrays, undef for nil. Binary safe. Dies with the error
# text on an error reply or when Redis cannot be reached.
sub redis {
    my $reply = _command(@_);
    croak $reply->message if _is_error($reply);
    return $reply;
}

# redis_try(@cmd) -> like redis(), but never dies: an error reply, or an I/O
# problem (e.g. Redis stopped), comes back as a t::MDM::RedisError object
# that stringifies to the message ("ERR ...", or "IO: connect to ...").
sub redis_try {
    my @cmd = @_;
    my $reply = eval { _command(@cmd) };
    if ($@) {
        (my $err = $@) =~ s/\s+\z//;
        return t::MDM::RedisError->new("IO: $err");
    }
    return $reply;
}


# ---------------------------------------------------------------------------
# Test PKI
# ---------------------------------------------------------------------------

# pki_dir() -> the PKI directory (same as $ENV{TEST_NGINX_PKI}).
sub pki_dir { return $Pki }

# ASN.1 time for `openssl ca -startdate/-enddate`.
sub _asn1_time {
    my ($epoch) = @_;
    return strftime('%Y%m%d%H%M%SZ', gmtime(int $epoch));
}

# Serial numbers unique across test files too: time, pid, counter (hex, even
# length, high bit clear).
sub _next_serial {
    return sprintf('%08X%04X%04X', time() & 0x7fffffff, $$ & 0xffff,
                   ++$Counter & 0xffff);
}

sub _openssl_config {
    my ($dir) = @_;
    return <<"EOF";
# Minimal OpenSSL configuration for the ngx_mdm test PKI (req and ca).
[req]
distinguished_name = req_dn
prompt             = no
string_mask        = utf8only

[req_dn]
CN = unused

[ca]
default_ca = test_ca

[test_ca]
database        = $dir/ca-db/index.txt
new_certs_dir   = $dir/ca-db/certs
serial          = $dir/ca-db/serial
default_md      = sha256
policy          = policy_any
unique_subject  = no
email_in_dn     = no
preserve        = yes
copy_extensions = none

[policy_any]
organizationName = optional
commonName       = supplied

[v3_root]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[v3_int]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[v3_server]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

# Like an Apple SCEP identity: KeyUsage 5 (digitalSignature,
# keyEncipherment), client authentication.
[v3_device]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[v3_device_no_client_auth]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF
}

# `openssl ca` signing, used whenever dates must be chosen (OpenSSL 3.0's
# `x509`/`req -x509` only take -days).
sub _ca_sign {
    my (%a) = @_;
    my $serial = _next_serial();
    _spew("$Pki/ca-db/serial", "$serial\n");
    _run('openssl', 'ca', '-batch', '-notext', '-config', "$Pki/openssl.cnf",
         ($a{selfsign} ? ('-selfsign') : ('-cert', $a{ca_cert})),
         '-keyfile', $a{ca_key}, '-in', $a{csr}, '-out', $a{out},
         '-extensions', $a{ext},
         '-startdate', _asn1_time($a{start}),
         '-enddate', _asn1_time($a{end}));
    unlink $a{csr};
    return $serial;
}

sub _subj {
    my (@rdn) = @_;
    my $s = '';
    while (my ($k, $v) = splice(@rdn, 0, 2)) {
        $v =~ s{([\\/])}{\\$1}g;    # `-subj` separators
        $s .= "/$k=$v";
    }
    return $s;
}

sub _init_pki {
    $Pki = tempdir('mdm-pki-XXXXXX', TMPDIR => 1,
                   CLEANUP => !$ENV{MDM_TEST_KEEP});
    chmod 0755, $Pki;
    mkdir "$Pki/$_" or die "mkdir $Pki/$_: $!\n"
        for qw(devices ca-db ca-db/certs sig);
    _spew("$Pki/ca-db/index.txt", '');
    _spew("$Pki/openssl.cnf", _openssl_config($Pki));

    my @keys = qw(ca int server rogue-ca shared);
    _run_parallel(map {
        [ 'openssl', 'genpkey', '-algorithm', 'RSA',
          '-pkeyopt', 'rsa_keygen_bits:2048', '-out', "$Pki/$_.key" ]
    } @keys);

    my $now = time;
    my ($start, $end) = ($now - 5 * 365 * 86400, $now + 20 * 365 * 86400);
    my $cnf = "$Pki/openssl.cnf";

    for my $root ([ 'ca', 'ngx_mdm Test Root CA' ],
                  [ 'rogue-ca', 'Rogue Root CA' ])
    {
        my ($f, $cn) = @$root;
        _run('openssl', 'req', '-new', '-config', $cnf, '-key', "$Pki/$f.key",
             '-subj', _subj(O => 'ngx_mdm tests', CN => $cn),
             '-out', "$Pki/$f.csr");
        _ca_sign(selfsign => 1, ca_key => "$Pki/$f.key", csr => "$Pki/$f.csr",
                 out => "$Pki/$f.pem", ext => 'v3_root',
                 start => $start, end => $end);
    }

    _run('openssl', 'req', '-new', '-config', $cnf, '-key', "$Pki/int.key",
         '-subj', _subj(O => 'ngx_mdm tests', CN => 'ngx_mdm Test Device CA'),
         '-out', "$Pki/int.csr");
    _ca_sign(ca_cert => "$Pki/ca.pem", ca_key => "$Pki/ca.key",
             csr => "$Pki/int.csr", out => "$Pki/int.pem", ext => 'v3_int',
             start => $start, end => $end);

    _run('openssl', 'req', '-x509', '-new', '-config', $cnf,
         '-extensions', 'v3_server', '-key', "$Pki/server.key",
         '-subj', _subj(CN => 'localhost'),
         '-CA', "$Pki/ca.pem", '-CAkey', "$Pki/ca.key",
         '-set_serial', '0x' . _next_serial(), '-days', 3650,
         '-out', "$Pki/server.pem");

    _spew("$Pki/identity-ca.pem",
          _slurp("$Pki/ca.pem") . _slurp("$Pki/int.pem"));

    # nginx (root in the tests, but not necessarily) must read the keys.
    chmod 0644, glob("$Pki/*.key"), glob("$Pki/*.pem");

    $ENV{TEST_NGINX_PKI} = $Pki;
}

sub _pem_to_der {
    my ($pem) = @_;
    $pem =~ /-----BEGIN CERTIFICATE-----\s*(.*?)-----END CERTIFICATE-----/s
        or die "no certificate in PEM\n";
    return decode_base64($1);
}

# PEM exactly as OpenSSL's PEM_write_bio_X509 writes it (64-column lines,
# trailing newline), which is what nginx escapes for $ssl_client_escaped_cert.
sub _der_to_pem {
    my ($der) = @_;
    my $b64 = encode_base64($der, '');
    return "-----BEGIN CERTIFICATE-----\n"
         . join('', map { "$_\n" } unpack('(A64)*', $b64))
         . "-----END CERTIFICATE-----\n";
}

my %DeviceOpts = map { $_ => 1 }
    qw(issuer expired not_before_in not_after_in no_client_auth shared_key
       cn days);

sub _opt_key {
    my ($opt) = @_;
    return join ',', map { "$_=" . ($opt->{$_} // '') } sort keys %$opt;
}

# device_cert($name, %opt) -> {
#     name, cn, serial (hex), cert (PEM path), key (path), chain (cert +
#     issuer PEM path), pem (text), der (bytes), sha256 (lowercase hex of the
#     DER: NanoMDM's cert hash), issuer ('int', 'root' or 'rogue')
# }
# An RSA-2048 device identity, issued by the intermediate: EKU clientAuth,
# KeyUsage digitalSignature+keyEncipherment, subject CN=$name, valid from now
# for `days` (365). Cached by name: later calls without options return the
# same hashref; calls with different options die.
# Options:
#     issuer => 'rogue'        issued by the unrelated rogue root
#     issuer => 'root'         issued directly by the root CA
#     expired => 1             notBefore 366 days ago, notAfter 1 day ago
#     not_before_in => N       notBefore N seconds from now (may be < 0)
#     not_after_in => N        notAfter N seconds from now (may be < 0)
#     no_client_auth => 1      EKU serverAuth only
#     shared_key => 1          reuse one pre-generated key (fast: for tests
#                              that need hundreds of certificates; each still
#                              has its own serial, CN and hash)
#     cn => '...'              subject CN other than $name
#     days => N                validity when no date option is given
sub device_cert {
    my ($name, %opt) = @_;
    croak "device_cert: a name is required" unless defined $name && length $name;

    if (my $c = $Certs{$name}) {
        return $c if !%opt || _opt_key(\%opt) eq $c->{_opt_key};
        croak "device_cert('$name'): already created with other options"
            . " ($c->{_opt_key}), asked for (" . _opt_key(\%opt) . ')';
    }

    for (keys %opt) {
        croak "device_cert: unknown option '$_'" unless $DeviceOpts{$_};
    }

    my $issuer = $opt{issuer} // 'int';
    my %ca = (int   => [ "$Pki/int.pem",      "$Pki/int.key" ],
              root  => [ "$Pki/ca.pem",       "$Pki/ca.key" ],
              rogue => [ "$Pki/rogue-ca.pem", "$Pki/rogue-ca.key" ]);
    croak "device_cert: issuer must be int, root or rogue" unless $ca{$issuer};
    my ($ca_cert, $ca_key) = @{ $ca{$issuer} };

    (my $file = $name) =~ s/[^A-Za-z0-9._-]/_/g;
    $file = "$Pki/devices/" . substr($file, 0, 64) . '-' . (++$Counter);
    my $cert = "$file.pem";
    my $key = $opt{shared_key} ? "$Pki/shared.key" : "$file.key";
    my @key_args = $opt{shared_key}
        ? ('-key', $key)
        : ('-newkey', 'rsa:2048', '-nodes', '-keyout', $key);

    my $ext = $opt{no_client_auth} ? 'v3_device_no_client_auth' : 'v3_device';
    my $subj = _subj(CN => $opt{cn} // $name);
    my $cnf = "$Pki/openssl.cnf";
    my $days = $opt{days} // 365;

    my $dated = $opt{expired} || defined $opt{not_before_in}
                || defined $opt{not_after_in};
    my $serial;

    if ($dated) {
        croak "device_cert: expired excludes not_before_in/not_after_in"
            if $opt{expired} && (defined $opt{not_before_in}
                                 || defined $opt{not_after_in});
        my $now = time;
        my ($start, $end);
        if ($opt{expired}) {
            ($start, $end) = ($now - 366 * 86400, $now - 86400);
        } else {
            $start = $now + ($opt{not_before_in} // 0);
            $end = defined $opt{not_after_in} ? $now + $opt{not_after_in}
                                              : $start + $days * 86400;
        }
        croak "device_cert: notAfter must be after notBefore" if $end <= $start;

        _run('openssl', 'req', '-new', '-config', $cnf, @key_args,
             '-subj', $subj, '-out', "$file.csr");
        $serial = _ca_sign(ca_cert => $ca_cert, ca_key => $ca_key,
                           csr => "$file.csr", out => $cert, ext => $ext,
                           start => $start, end => $end);
    } else {
        # One process: OpenSSL 3.0 `req -x509 -CA` issues from a CA directly.
        $serial = _next_serial();
        _run('openssl', 'req', '-x509', '-new', '-config', $cnf,
             '-extensions', $ext, @key_args, '-subj', $subj,
             '-CA', $ca_cert, '-CAkey', $ca_key,
             '-set_serial', "0x$serial", '-days', $days, '-out', $cert);
    }
    chmod 0644, $cert, $key;

    my $der = _pem_to_der(_slurp($cert));
    my $pem = _der_to_pem($der);
    _spew("$file.chain.pem", $pem . _slurp($ca_cert));
    chmod 0644, "$file.chain.pem";

    return $Certs{$name} = {
        name     => $name,
        cn       => $opt{cn} // $name,
        serial   => $serial,
        issuer   => $issuer,
        cert     => $cert,
        key      => $key,
        chain    => "$file.chain.pem",
        pem      => $pem,
        der      => $der,
        sha256   => sha256_hex($der),
        _opt_key => _opt_key(\%opt),
        _ca_cert => $ca_cert,
    };
}

# Accepts a device_cert() hashref, a name (created with default options if
# new), or the sha256 of an already created certificate.
sub _resolve_cert {
    my ($who) = @_;
    croak "no certificate given" unless defined $who;
    return $who if ref $who eq 'HASH' && $who->{cert};
    croak "not a certificate: $who" if ref $who;
    return $Certs{$who} if $Certs{$who};
    if ($who =~ /^[0-9a-f]{64}\z/) {
        for my $c (values %Certs) {
            return $c if $c->{sha256} eq $who;
        }
    }
    return device_cert($who);
}

# cert_sha256($name_or_cert) -> lowercase hex SHA-256 of the DER.
sub cert_sha256 { return _resolve_cert($_[0])->{sha256} }

# The certificates bound to a device are the fields of its enrollment hash
# named by a SHA-256 (64 hex digits).
my $BindingFields = q{
    local t, b = redis.call('HGETALL', KEYS[1]), {}
    for i = 1, #t, 2 do
        if #t[i] == 64 and not string.find(t[i], '[^0-9a-f]') then
            b[#b + 1] = t[i]
        end
    end
    table.sort(b)
};

sub _enr_key {
    my ($id) = @_;
    my ($did, $user) = split /:/, $id, 2;
    return "mdm:enr:{$did}" . (defined $user ? ":$user" : '');
}

# cert_bindings($enrollment_id) -> a redis_check command whose reply is
# [ sha256, notAfter, ... ] of the enrollment's bindings, by sha256.
sub cert_bindings {
    return [ 'EVAL', $BindingFields . q{
        local r = {}
        for _, h in ipairs(b) do
            r[#r + 1] = h
            r[#r + 1] = redis.call('HGET', KEYS[1], h)
        end
        return r
    }, 1, _enr_key($_[0]) ];
}

# cert_unbind_all($enrollment_id) -> a redis_setup command that drops every
# binding of the enrollment, as an admin resetting it would.
sub cert_unbind_all {
    return [ 'EVAL', $BindingFields . q{
        for _, h in ipairs(b) do redis.call('HDEL', KEYS[1], h) end
        return #b
    }, 1, _enr_key($_[0]) ];
}

# A DER TLV at $pos -> (tag, header length, content length). Single-byte
# tags only, which is all CMS uses at the levels _ber_signature touches.
sub _der_tlv {
    my ($der, $pos) = @_;
    die "DER: truncated at offset $pos\n" if $pos + 2 > length $der;
    my $tag = ord substr($der, $pos, 1);
    my $len = ord substr($der, $pos + 1, 1);
    my $hl = 2;
    if ($len & 0x80) {
        my $n = $len & 0x7f;
        die "DER: indefinite or oversized length at offset $pos\n"
            if $n == 0 || $n > 4;
        $len = 0;
        $len = ($len << 8) | ord substr($der, $pos + 2 + $_, 1) for 0 .. $n - 1;
        $hl += $n;
    }
    die "DER: length at offset $pos runs past the end\n"
        if $pos + $hl + $len > length $der;
    return ($tag, $hl, $len);
}

# Re-encodes a DER detached CMS signature the way Apple devices send it: the
# ContentInfo, its [0], the SignedData, its encapContentInfo and its
# signerInfos in indefinite-length BER (0x80 ... 00 00). Certificates are
# left alone: their signatures cover their own encoding. The content stays
# detached (`openssl cms -sign -stream` would also give BER, but embeds the
# content).
sub _ber_signature {
    my ($der) = @_;

    my $indef = sub {
        my ($tlv) = @_;
        my ($tag, $hl) = _der_tlv($tlv, 0);
        return chr($tag) . "\x80" . substr($tlv, $hl) . "\0\0";
    };

    my ($ci_tag, $hl, $ci_len) = _der_tlv($der, 0);       # ContentInfo
    die "DER: not a SEQUENCE\n" unless $ci_tag == 0x30;
    my $end = $hl + $ci_len;
    my $pos = $hl;
    my (undef, $oid_hl, $oid_len) = _der_tlv($der, $pos); # contentType
    my $oid = substr($der, $pos, $oid_hl + $oid_len);
    $pos += $oid_hl + $oid_len;
    my (undef, $x_hl) = _der_tlv($der, $pos);             # [0] EXPLICIT
    $pos += $x_hl;
    my (undef, $sd_hl) = _der_tlv($der, $pos);            # SignedData
    $pos += $sd_hl;

    my $sd = '';
    while ($pos < $end) {
        my ($t, $h, $l) = _der_tlv($der, $pos);
        my $tlv = substr($der, $pos, $h + $l);
        # encapContentInfo (SEQUENCE) and signerInfos (the last SET)
        $tlv = $indef->($tlv)
            if $t == 0x30 || ($t == 0x31 && $pos + $h + $l == $end);
        $sd .= $tlv;
        $pos += $h + $l;
    }

    return "\x30\x80" . $oid . "\xa0\x80" . "\x30\x80" . $sd . "\0\0" x 3;
}

# mdm_signature($body, $name_or_cert, %opt) -> single-line base64 of a
# detached CMS SignedData over the exact bytes of $body, as a device puts in
# the Mdm-Signature header: SHA-256, signed attributes (contentType,
# signingTime, messageDigest), the signer certificate included, no chain.
# Options: ber => 1 (indefinite-length BER, like Apple clients; still
# detached), noattr => 1 (no signed attributes), chain => 1 (also include
# the issuer).
sub mdm_signature {
    my ($body, $who, %opt) = @_;
    for (keys %opt) {
        croak "mdm_signature: unknown option '$_'"
            unless /^(?:ber|noattr|chain)\z/;
    }
    my $c = _resolve_cert($who);

    my $n = ++$Counter;
    my ($in, $out) = ("$Pki/sig/body-$n", "$Pki/sig/sig-$n.der");
    _spew($in, _bytes($body));

    _run('openssl', 'cms', '-sign', '-binary', '-md', 'sha256',
         '-outform', 'DER', '-nosmimecap',
         '-signer', $c->{cert}, '-inkey', $c->{key},
         # The signer is always included; -certfile adds only the issuer.
         ($opt{chain} ? ('-certfile', $c->{_ca_cert}) : ()),
         ($opt{noattr} ? ('-noattr') : ()),
         '-in', $in, '-out', $out);

    my $sig = _slurp($out);
    unlink $in, $out;

    die "mdm_signature: openssl produced BER where DER was expected\n"
        if substr($sig, 1, 1) eq "\x80";

    if ($opt{ber}) {
        $sig = eval { _ber_signature($sig) };
        die "mdm_signature: cannot re-encode the signature as BER: $@" if $@;
        # The point of `ber` is the indefinite lengths (0x80) of the
        # ContentInfo, its [0] and the SignedData; make sure we have them.
        die "mdm_signature: the BER signature has no indefinite lengths\n"
            unless $sig =~ /\A\x30\x80\x06/ && index($sig, "\xa0\x80\x30\x80") > 0
                   && substr($sig, -6) eq "\0" x 6;
    }

    return encode_base64($sig, '');
}

# rfc9440_header($name_or_cert) -> ":" . base64(DER) . ":" (Client-Cert
# header, RFC 9440).
sub rfc9440_header {
    return ':' . encode_base64(_resolve_cert($_[0])->{der}, '') . ':';
}

# escaped_pem_header($name_or_cert, plus => 1) -> the PEM escaped exactly
# like nginx's $ssl_client_escaped_cert (ngx_escape_uri with
# NGX_ESCAPE_URI_COMPONENT: everything but ALPHA, DIGIT, "-", ".", "_", "~"
# becomes %XX, upper-case hex), e.g. "-----BEGIN%20CERTIFICATE-----%0AMII...".
# With plus => 1, spaces become "+" instead (Go's url.QueryEscape form, which
# NanoMDM's own test data uses).
sub escaped_pem_header {
    my ($who, %opt) = @_;
    my $s = _resolve_cert($who)->{pem};
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    $s =~ s/%20/+/g if $opt{plus};
    return $s;
}


# ---------------------------------------------------------------------------
# Test vectors and plists
# ---------------------------------------------------------------------------

# vectors_dir() -> the device vectors the suite uses: t/vectors in this
# repository (copied from the sources named in t/vectors/README.md, each
# with its LICENSE), or $MDM_VECTORS when set.
sub vectors_dir {
    return $ENV{MDM_VECTORS} if $ENV{MDM_VECTORS};
    my $dir = File::Spec->catdir($RepoRoot, 't', 'vectors');
    return abs_path($dir) // $dir;
}

# vector($relpath) -> the file's bytes, e.g.
# vector('nanomdm/mdm/testdata/Authenticate.2.plist'). Dies if missing.
sub vector {
    my ($rel) = @_;
    my $path = vectors_dir() . "/$rel";
    my $data = _slurp($path);
    croak "vector '$rel': cannot read $path: $!" unless defined $data;
    return $data;
}

sub _xml_escape {
    my ($s) = @_;
    $s =~ s/&/&amp;/g;
    $s =~ s/</&lt;/g;
    $s =~ s/>/&gt;/g;
    return $s;
}

sub _xml_unescape {
    my ($s) = @_;
    $s =~ s/&lt;/</g;
    $s =~ s/&gt;/>/g;
    $s =~ s/&quot;/"/g;
    $s =~ s/&apos;/'/g;
    $s =~ s/&#x([0-9a-fA-F]+);/chr hex $1/ge;
    $s =~ s/&#(\d+);/chr $1/ge;
    $s =~ s/&amp;/&/g;
    return $s;
}

# Scans an XML plist and returns the top-level dict: its entries
# [ key, key_start, value_start, value_end ] (offsets into $xml) and the
# offset of its closing </dict>. Only <dict>/<array> nesting matters, so a
# regex tokenizer is enough for plists.
sub _plist_top {
    my ($xml) = @_;
    my ($depth, $close, $pending, $cur) = (0);
    my @entries;

    while ($xml =~ m{\G(.*?)(<!--.*?-->|<[?!][^>]*>|<(/?)(\w+)[^>]*?(/?)>)}gs) {
        my ($tag_start, $tag_end) = ($-[2], $+[2]);
        next unless defined $4;    # comment, <?xml?>, <!DOCTYPE>
        my ($closing, $name, $empty) = ($3, $4, $5);

        if (!$closing && !$empty && ($name eq 'dict' || $name eq 'array')) {
            if ($depth == 0) {
                croak "plist: top-level element is not a dict"
                    if $name ne 'dict';
            } elsif ($depth == 1) {
                $cur = [ $pending->[0], $pending->[1], $tag_start ] if $pending;
                undef $pending;
            }
            $depth++;
            next;
        }

        if ($closing && ($name eq 'dict' || $name eq 'array')) {
            $depth--;
            if ($depth == 0) {
                $close = $tag_start;
                last;
            }
            if ($depth == 1 && $cur) {
                push @entries, [ @$cur, $tag_end ];
                undef $cur;
            }
            next;
        }

        next unless $depth == 1;

        if ($name eq 'key' && !$closing && !$empty) {
            $xml =~ m{\G(.*?)</key>}gs or croak "plist: unterminated <key>";
            $pending = [ _xml_unescape($1), $tag_start ];
        } elsif (!$closing && $pending) {
            my $value_end = $tag_end;
            if (!$empty) {
                $xml =~ m{\G.*?</\Q$name\E\s*>}gs
                    or croak "plist: unterminated <$name>";
                $value_end = $+[0];
            }
            push @entries, [ $pending->[0], $pending->[1], $tag_start,
                             $value_end ];
            undef $pending;
        }
    }

    croak "plist: no top-level <dict>...</dict> found" unless defined $close;
    return (\@entries, $close);
}

# plist_set($xml, Key => value, ...) -> $xml with the top-level Key's value
# replaced by <string>value</string> (XML-escaped), or the pair inserted
# before the closing top-level </dict> if Key is missing. undef removes the
# key. A scalar ref inserts raw XML instead: Key => \'<true/>'.
# Nested dicts are never touched, so re-using a real body with your own UDID
# leaves e.g. QueryResponses/UDID alone.
sub plist_set {
    my ($xml, @pairs) = @_;
    croak "plist_set: odd number of key/value arguments" if @pairs % 2;

    while (my ($key, $value) = splice(@pairs, 0, 2)) {
        my ($entries, $close) = _plist_top($xml);
        my ($entry) = grep { $_->[0] eq $key } @$entries;
        my $value_xml = ref $value eq 'SCALAR' ? $$value
                      : defined $value ? '<string>' . _xml_escape($value)
                                         . '</string>'
                      : undef;

        if ($entry) {
            my (undef, $kstart, $vstart, $vend) = @$entry;
            if (defined $value_xml) {
                substr($xml, $vstart, $vend - $vstart, $value_xml);
            } else {
                # Remove the pair and the indentation/newline before it.
                my $start = $kstart;
                $start-- while $start > 0
                               && substr($xml, $start - 1, 1) =~ /[ \t]/;
                $start-- if $start > 0 && substr($xml, $start - 1, 1) eq "\n";
                substr($xml, $start, $vend - $start, '');
            }
            next;
        }

        next unless defined $value_xml;

        my $pair = '<key>' . _xml_escape($key) . "</key>";
        # Indent like the existing keys if the plist is pretty-printed.
        my $line_start = $close;
        $line_start-- while $line_start > 0
                            && substr($xml, $line_start - 1, 1) =~ /[ \t]/;
        if ($line_start > 0 && substr($xml, $line_start - 1, 1) eq "\n") {
            my $indent = "\t";
            if (@$entries) {
                my $k = $entries->[0][1];
                my $i = $k;
                $i-- while $i > 0 && substr($xml, $i - 1, 1) =~ /[ \t]/;
                $indent = substr($xml, $i, $k - $i);
            }
            substr($xml, $line_start, 0,
                   "$indent$pair\n$indent$value_xml\n");
        } else {
            substr($xml, $close, 0, "$pair$value_xml");
        }
    }

    return $xml;
}

# plist_get($xml, $key) -> the unescaped text of a top-level <string> (or
# <integer>, <date>, <data> trimmed...) value, 'true'/'false' for booleans,
# the raw XML for dicts and arrays, undef if the key is missing.
sub plist_get {
    my ($xml, $key) = @_;
    my ($entries) = _plist_top($xml);
    my ($entry) = grep { $_->[0] eq $key } @$entries or return undef;
    my $v = substr($xml, $entry->[2], $entry->[3] - $entry->[2]);
    return $1 if $v =~ m{^<(true|false)\s*/>\z};
    return '' if $v =~ m{^<\w+\s*/>\z};
    return $v if $v =~ m{^<(?:dict|array)\b};
    $v =~ m{^<(\w+)[^>]*>(.*)</\1\s*>\z}s or return $v;
    my ($type, $text) = ($1, $2);
    $text =~ s/^\s+|\s+\z//g if $type ne 'string';
    return _xml_unescape($text);
}


# ---------------------------------------------------------------------------
# HTTP helpers
# ---------------------------------------------------------------------------

# http_request($method, $path, $body, \%headers or \@pairs) -> the raw
# HTTP/1.1 request text. Adds Host: localhost and Connection: close unless
# given, and Content-Length when $body is defined (unless given, or
# Transfer-Encoding is given). Hash headers are sent in sorted order; pass an
# arrayref of name/value pairs to control the order or repeat a header.
sub http_request {
    my ($method, $path, $body, $headers) = @_;
    my @h = ref $headers eq 'ARRAY' ? @$headers
          : map { ($_, $headers->{$_}) } sort keys %{ $headers || {} };

    my %have;
    for (my $i = 0; $i < @h; $i += 2) {
        $have{ lc $h[$i] } = 1;
    }

    my $req = "$method $path HTTP/1.1\r\n";
    $req .= "Host: localhost\r\n" unless $have{host};
    $req .= "Connection: close\r\n" unless $have{connection};
    for (my $i = 0; $i < @h; $i += 2) {
        $req .= "$h[$i]: $h[$i + 1]\r\n";
    }
    if (defined $body) {
        $body = _bytes($body);
        $req .= 'Content-Length: ' . length($body) . "\r\n"
            unless $have{'content-length'} || $have{'transfer-encoding'};
    }
    return _bytes($req) . "\r\n" . ($body // '');
}

# parse_http_response($raw) -> { status, headers (lower-case names; repeated
# headers joined with ", "), body (de-chunked; cut at Content-Length), raw }.
# status is undef if no complete header block was received.
sub parse_http_response {
    my ($raw) = @_;
    $raw = '' unless defined $raw;
    my %r = (status => undef, headers => {}, body => '', raw => $raw);

    my $i = index($raw, "\r\n\r\n");
    return \%r if $i < 0;

    my ($status_line, @lines) = split /\r\n/, substr($raw, 0, $i);
    ($r{status}) = $status_line =~ m{^HTTP/\d+(?:\.\d+)?\s+(\d{3})};
    for (@lines) {
        my ($k, $v) = /^([^:]+):[ \t]*(.*?)[ \t]*\z/ or next;
        $k = lc $k;
        $r{headers}{$k} = exists $r{headers}{$k} ? "$r{headers}{$k}, $v" : $v;
    }

    my $body = substr($raw, $i + 4);
    my $te = $r{headers}{'transfer-encoding'};
    my $cl = $r{headers}{'content-length'};

    if (defined $te && $te =~ /\bchunked\b/i) {
        my $out = '';
        while ($body =~ s/\A([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $out .= substr($body, 0, $len);
            substr($body, 0, $len + 2, '');
        }
        $body = $out;
    } elsif (defined $cl && $cl =~ /^\d+\z/ && length($body) > $cl) {
        $body = substr($body, 0, $cl);
    }

    $r{body} = $body;
    return \%r;
}

# concurrent_requests($port, \@raw_requests, timeout => 10, host => IP)
# -> [ { status, headers, body, raw, error }, ... ] in request order.
# Opens every connection before sending anything, then writes and reads them
# all from one non-blocking select loop (no fork), until each peer closes.
# `error` is set for a connection that failed or was still open at the
# timeout (whatever arrived is still parsed). Uses select(2): keep it under
# ~1000 connections, and mind that the harness's nginx.conf allows 64
# worker_connections by default.
sub concurrent_requests {
    my ($port, $reqs, %opt) = @_;
    my $timeout = $opt{timeout} // 10;
    my $host = $opt{host} // '127.0.0.1';
    local $SIG{PIPE} = 'IGNORE';

    my (@conns, %by_fd);
    my $rsel = IO::Select->new;
    my $wsel = IO::Select->new;

    for my $i (0 .. $#$reqs) {
        my $c = { out => _bytes($reqs->[$i]), off => 0, in => '' };
        push @conns, $c;
        my $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
                                         Proto => 'tcp', Blocking => 0);
        if (!$sock) {
            $c->{error} = "connect: $!";
            next;
        }
        $c->{sock} = $sock;
        $by_fd{ fileno $sock } = $c;
        # Read from the start: the server may answer before the whole body
        # is sent (e.g. 413).
        $rsel->add($sock);
        $wsel->add($sock);
    }

    my $drop = sub {
        my ($c) = @_;
        $rsel->remove($c->{sock});
        $wsel->remove($c->{sock});
        delete $by_fd{ fileno $c->{sock} };
        close $c->{sock};
    };

    my $deadline = time + $timeout;
    while ($rsel->count || $wsel->count) {
        my $left = $deadline - time;
        last if $left <= 0;
        my ($r, $w) = IO::Select->select($rsel, $wsel, undef, $left);
        next unless $r || $w;    # EINTR

        # A socket dropped earlier in this round is closed: fileno is undef.
        for my $sock (@{ $w || [] }) {
            my $fd = fileno $sock;
            my $c = defined $fd && $by_fd{$fd} or next;
            my $n = syswrite($sock, $c->{out}, length($c->{out}) - $c->{off},
                             $c->{off});
            if (!defined $n) {
                next if $!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR};
                $c->{error} = "write: $!";
                $drop->($c);
                next;
            }
            $c->{off} += $n;
            $wsel->remove($sock) if $c->{off} >= length $c->{out};
        }

        for my $sock (@{ $r || [] }) {
            my $fd = fileno $sock;
            my $c = defined $fd && $by_fd{$fd} or next;
            my $n = sysread($sock, $c->{in}, 65536, length $c->{in});
            if (!defined $n) {
                next if $!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR};
                # A reset after a complete response is still a response.
                $c->{error} = "read: $!";
                $drop->($c);
            } elsif ($n == 0) {
                $drop->($c);
            }
        }
    }

    for my $c (values %by_fd) {
        $c->{error} //= "timeout after ${timeout}s";
        $drop->($c);
    }

    return [ map {
        my $res = parse_http_response($_->{in});
        $res->{error} = $_->{error} if defined $_->{error};
        $res;
    } @conns ];
}


# ---------------------------------------------------------------------------
# Block sections
# ---------------------------------------------------------------------------

# A section's value, or undef. Test::Base creates accessors per section name
# on first use, and AUTOLOADs the rest to an empty list.
sub _section {
    my ($block, $name) = @_;
    return scalar $block->$name() if $block->can($name);
    my $v = $block->{$name};
    return ref $v eq 'ARRAY' ? $v->[0] : $v;
}

sub _block_name {
    my ($block) = @_;
    return _section($block, 'name') // '(unnamed block)';
}

# request_body($request, $more_headers, $strip_leading) -> the body bytes the
# harness will send for one `--- request` string, following upstream
# Test::Nginx::Socket: leading whitespace and `#` lines are dropped (only for
# a plain string request, $strip_leading), the first line is the request
# line, the rest is trimmed of surrounding whitespace unless more_headers
# sets Content-Length (or the request is chunked).
sub request_body {
    my ($request, $more_headers, $strip_leading) = @_;
    $request = _bytes($request);
    $more_headers //= '';

    if ($strip_leading) {
        1 while $request =~ s/^\s*\#[^\n]+\s+|^\s+//gs;
    }

    my $nl = index($request, "\n");
    my $body = $nl < 0 ? '' : substr($request, $nl + 1);

    my ($has_length, $chunked);
    for my $line (split /\n+/, $more_headers) {
        next if $line eq '' || $line =~ /^\s*\#/;
        my ($k, $v) = split /:\s*/, $line, 2;
        $has_length = 1 if $k eq 'Content-Length';    # as upstream: exact case
        $chunked = 1 if lc($k) eq 'transfer-encoding'
                        && defined $v && $v =~ /^chunked\r?\z/;
    }
    die "signed_by: chunked request bodies are not supported\n" if $chunked;

    $body =~ s/^\s+|\s+$//gs if $body ne '' && !$has_length;
    return $body;
}

sub _signature_opts {
    my ($spec) = @_;
    return () unless defined $spec;
    my @words = ref $spec eq 'ARRAY' ? @$spec : split /[\s,]+/, $spec;
    return map { ($_ => 1) } grep { length } @words;
}

# "NAME opt opt=value ..." -> the device_cert() hashref.
sub _signer {
    my ($spec) = @_;
    return $spec if ref $spec;
    my ($name, @words) = split ' ', $spec;
    my %opt = map { /^([^=]+)=(.*)\z/ ? ($1 => $2) : ($_ => 1) } @words;
    return device_cert($name, %opt);
}

sub _append_header {
    my ($headers, $line) = @_;
    $headers //= '';
    $headers .= "\n" if length $headers && $headers !~ /\n\z/;
    return "$headers$line\n";
}

sub _add_signatures {
    my ($block, $who) = @_;
    my $name = _block_name($block);

    die "$name - signed_by needs --- request; with raw_request, build the"
        . " Mdm-Signature header yourself\n"
        if defined _section($block, 'raw_request');

    my $pipelined = _section($block, 'pipelined_requests');
    my $request = $pipelined // _section($block, 'request');
    die "$name - signed_by without a --- request section\n"
        unless defined $request;

    my $list = ref $request eq 'ARRAY';
    my @reqs = $list ? @$request : ($request);
    my $mh = _section($block, 'more_headers');
    my %sig_opt = _signature_opts(_section($block, 'signature_opts'));
    my @who = ref $who eq 'ARRAY' ? @$who : (($who) x @reqs);

    my @headers;
    for my $i (0 .. $#reqs) {
        my $req = $reqs[$i];
        # A request given as packets: the body spans them.
        $req = join '', map { ref $_ eq 'HASH' ? $_->{value} : $_ } @$req
            if ref $req eq 'ARRAY';
        my $hdr = ref $mh eq 'ARRAY' ? $mh->[$i] : $mh;

        my $signer = $who[$i];
        if (defined $signer && (ref $signer || $signer =~ /\S/)) {
            my $body = eval { request_body($req, $hdr, !$list) };
            die "$name - $@" if $@;
            my $sig = mdm_signature($body, _signer($signer), %sig_opt);
            $hdr = _append_header($hdr, "Mdm-Signature: $sig");
        }
        push @headers, $hdr // '';
    }

    $block->set_value(more_headers => ($list || ref $mh eq 'ARRAY')
                                      ? \@headers : $headers[0]);
}

sub _redis_setup {
    my ($block) = @_;
    my $setup = _section($block, 'redis_setup');
    return unless defined $setup;
    my $name = _block_name($block);

    if (ref $setup eq 'CODE') {
        $setup->($block);
        return;
    }

    my @cmds = ref $setup eq 'ARRAY'
        ? @$setup
        : grep { /\S/ && !/^\s*#/ } split /\n/, $setup;

    for my $cmd (@cmds) {
        my @argv = ref $cmd eq 'ARRAY' ? @$cmd : shellwords($cmd);
        die "$name - redis_setup: cannot parse '$cmd' (unbalanced quotes?)\n"
            unless @argv;
        my $r = redis_try(@argv);
        die "$name - redis_setup: @argv: $r\n" if _is_error($r);
    }
}

sub _ensure_redis {
    redis_start() unless _redis_alive();
}

# Test::Base's `eval` filter does not die: a failing eval silently becomes
# the error message, which the harness would then send as the request (or
# compare as the body). Turn that into a clear error.
sub _check_eval_sections {
    my ($block) = @_;
    my $map = _section($block, '_section_map');
    return unless ref $map eq 'HASH';
    for my $s (sort keys %$map) {
        next unless ($map->{$s}{filters} // '') =~ /(?:^|\s)eval(?:\s|$)/;
        my $v = _section($block, $s);
        die _block_name($block) . " - --- $s eval failed: $v"
            if defined $v && !ref $v && $v =~ /\(eval \d+\) line \d+\b/;
    }
}

# Called by the harness right before each block (before nginx starts).
# Returns the block: newer upstream versions use the return value.
sub preprocess_block {
    my ($block) = @_;
    my $name = _block_name($block);

    _check_eval_sections($block);

    for my $s (qw(after_each)) {
        my $v = _section($block, $s);
        die "$name - --- $s must be `eval` giving an arrayref of coderefs"
            . " (eval error?): $v\n"
            if defined $v && !ref $v && $v =~ /\S/;
    }
    for my $s (qw(redis_check after_each)) {
        die "$name - --- $s needs Test::Nginx::Socket::add_response_body_check\n"
            if defined _section($block, $s)
               && !defined &Test::Nginx::Socket::add_response_body_check
               && $HooksRegistered;
    }

    _ensure_redis();
    _redis_setup($block);

    my $who = _section($block, 'signed_by');
    _add_signatures($block, $who) if defined $who;

    return $block;
}

sub _request_count {
    my ($block) = @_;
    my $p = _section($block, 'pipelined_requests');
    return scalar @$p if ref $p eq 'ARRAY';
    return 1 if defined _section($block, 'raw_request');
    my $r = _section($block, 'request');
    return ref $r eq 'ARRAY' ? scalar @$r : 1;
}

sub _repeat_each {
    my $f = Test::Nginx::Socket->can('repeat_each') or return 1;
    my $n = eval { $f->() };
    return defined $n && $n =~ /^\d+\z/ && $n > 0 ? $n : 1;
}

# Splits "CMD args => expected" at the first "=>" outside quotes.
sub _split_check_line {
    my ($line) = @_;
    my $q = '';
    for (my $i = 0; $i < length $line; $i++) {
        my $ch = substr($line, $i, 1);
        if ($q) {
            $i++ if $ch eq '\\' && $q eq '"';
            $q = '' if $ch eq $q;
        } elsif ($ch eq '"' || $ch eq "'") {
            $q = $ch;
        } elsif (substr($line, $i, 2) eq '=>') {
            return (substr($line, 0, $i), substr($line, $i + 2));
        }
    }
    return;
}

sub _parse_checks {
    my ($spec, $name) = @_;
    my @checks;

    if (ref $spec eq 'ARRAY') {
        for my $pair (@$spec) {
            die "$name - redis_check eval: each entry must be [ CMD, EXPECTED ]\n"
                unless ref $pair eq 'ARRAY' && @$pair == 2;
            my ($cmd, $exp) = @$pair;
            my @argv = ref $cmd eq 'ARRAY' ? @$cmd : shellwords($cmd);
            push @checks, { argv => \@argv, label => "@argv",
                            kind => 'perl', expected => $exp };
        }
        return @checks;
    }

    for my $line (split /\n/, $spec) {
        next if $line !~ /\S/ || $line =~ /^\s*#/;
        my ($lhs, $rhs) = _split_check_line($line);
        if (!defined $rhs) {
            push @checks, { malformed => $line };
            next;
        }
        s/^\s+|\s+\z//g for $lhs, $rhs;
        my @argv = shellwords($lhs);
        my %c = (argv => \@argv, label => $lhs);
        if ($rhs eq '(nil)') {
            $c{kind} = 'nil';
        } elsif ($rhs =~ /^~\s*(.*)\z/s) {
            @c{qw(kind re)} = ('re', qr/$1/);
        } elsif ($rhs eq '""' || $rhs eq "''") {
            @c{qw(kind text)} = ('text', '');
        } else {
            @c{qw(kind text)} = ('text', $rhs);
        }
        push @checks, \%c;
    }
    return @checks;
}

# Renders a reply the way redis_check lines are written.
sub _render {
    my ($v, $nested) = @_;
    return '(nil)' unless defined $v;
    return "(error) $v" if _is_error($v);
    if (ref $v eq 'ARRAY') {
        return '(empty)' if !@$v && !$nested;
        my $s = join ',', map { _render($_, 1) } @$v;
        return $nested ? "[$s]" : $s;
    }
    return "$v";
}

sub _plain {
    my ($v) = @_;
    return "(error) $v" if _is_error($v);
    return [ map { _plain($_) } @$v ] if ref $v eq 'ARRAY';
    return $v;
}

sub _run_check {
    my ($c, $label) = @_;
    my $got = redis_try(@{ $c->{argv} });

    if ($c->{kind} eq 'nil') {
        return Test::More::is(_render($got), '(nil)', $label);
    }
    if ($c->{kind} eq 're') {
        return Test::More::like(_render($got), $c->{re}, $label);
    }
    if ($c->{kind} eq 'text') {
        my $exp = $c->{text};
        if (ref $got eq 'ARRAY') {
            # "a, b" and "a,b" mean the same; "", "[]" and "(empty)" mean an
            # empty array.
            $exp = $exp =~ /^(?:|\[\]|\(empty\))\z/ ? '(empty)'
                 : join ',', split /\s*,\s*/, $exp, -1;
        }
        return Test::More::is(_render($got), $exp, $label);
    }

    # redis_check eval
    my $exp = $c->{expected};
    return Test::More::is(_render($got), '(nil)', $label) unless defined $exp;
    return Test::More::like(_render($got), $exp, $label) if ref $exp eq 'Regexp';
    return Test::More::is_deeply(_plain($got), $exp, $label)
        if ref $exp eq 'ARRAY';
    if (ref $exp eq 'CODE') {
        my $ok = Test::More::ok(scalar $exp->($got), $label);
        Test::More::diag("got: " . _render($got)) unless $ok;
        return $ok;
    }
    return Test::More::is(_render($got), $exp, $label);
}

sub _redis_checks {
    my ($block, $dry_run) = @_;
    my $spec = _section($block, 'redis_check');
    return unless defined $spec;
    my $name = _block_name($block);

    for my $c (_parse_checks($spec, $name)) {
        if ($c->{malformed}) {
            Test::More::fail("$name - redis_check: malformed line"
                             . " (want 'CMD args => expected'): $c->{malformed}");
            next;
        }
        my $label = "$name - redis_check: $c->{label}";
        if ($dry_run) {
            Test::More->builder->skip("$label - skipped due to $dry_run");
            next;
        }
        _run_check($c, $label);
    }
}

# Called by the harness after each response of a block.
sub check_response {
    my ($block, $body, $req_idx, $rep_idx, $dry_run) = @_;
    $req_idx //= 0;
    $rep_idx //= 0;
    my $name = _block_name($block);
    my $n = _request_count($block);

    my $after = _section($block, 'after_each');
    if (defined $after && !$dry_run) {
        my $hook = ref $after eq 'ARRAY' ? $after->[$req_idx]
                 : ref $after eq 'CODE' ? $after
                 : undef;
        if ($hook) {
            eval { $hook->($block, $body, $req_idx, $rep_idx); 1 }
                or Test::More::fail("$name - after_each hook for request"
                                    . " $req_idx died: $@");
        }
    }

    return unless $req_idx == $n - 1;

    _redis_checks($block, $dry_run);

    # repeat_each(N): give the next repetition the same starting state.
    if (!$dry_run && $rep_idx + 1 < _repeat_each()) {
        _ensure_redis();
        _redis_setup($block);
    }
}


# `perl -c` compiles (so loads us) but never runs END: start nothing there.
_init() unless $^C;


# ---------------------------------------------------------------------------
# Suite defaults
# ---------------------------------------------------------------------------

# The check-in Content-Type every device sends.
our $CheckinType = 'application/x-apple-aspen-mdm-checkin';

# mdm_defaults(http_config => ..., config => ..., more_headers => ...)
# Fills those sections in every block that has none, so a suite states its
# configuration once. more_headers is added unless the block sets a
# Content-Type itself or has a `--- no_defaults` section. Register it after
# `use t::MDM`: preprocessors run newest first, so signed_by then sees the
# final headers.
sub mdm_defaults {
    my %def = @_;
    Test::Nginx::Socket::add_block_preprocessor(sub {
        my $block = shift;
        for my $sec (qw(main_config http_config config)) {
            next unless defined $def{$sec};
            next if $block->can($sec) && defined $block->$sec;
            $block->set_value($sec, $def{$sec});
        }
        return unless defined $def{more_headers};
        return if $block->can('no_defaults') && defined $block->no_defaults;
        my $mh = $block->can('more_headers') ? $block->more_headers : undef;
        return if ref $mh;
        return if defined $mh && $mh =~ /^Content-Type:/mi;
        $block->set_value('more_headers',
                          $def{more_headers} . (defined $mh ? "\n$mh" : ''));
    });
}

# mdm_server_defaults(LOCATIONS): mdm_defaults() for a suite of device
# requests: the test Redis, the test identity CA, `location = /mdm {
# mdm_server; }` and the suite's own LOCATIONS, the check-in Content-Type.
sub mdm_server_defaults {
    my ($locations) = @_;
    mdm_defaults(
        http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
        config => "mdm_identity_ca \$TEST_NGINX_PKI/identity-ca.pem;\n"
                  . "location = /mdm { mdm_server; }\n" . ($locations // ''),
        more_headers => "Content-Type: $CheckinType",
    );
}

# The request line plus a vector's body, optionally with keys replaced:
#   checkin_request("nanomdm/mdm/testdata/Authenticate.2.plist", UDID => "U1")
sub checkin_request {
    my ($vector, @set) = @_;
    my $path = ($vector =~ s/^(\/\S+)\s+//) ? $1 : '/mdm/checkin';
    my $body = vector($vector);
    $body = plist_set($body, @set) if @set;
    return "PUT $path\n$body";
}

1;
