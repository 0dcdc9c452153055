# The public SCEP vector (micromdm/scep's testdata, in t/vectors/scep): a
# PKCSReq made by Apple's mdmclient in 2016 (DES3 + SHA-1, a self-signed
# signer, a 1024-bit device key, no challengePassword) to a CA that expired
# on 29 May 2026.  Answered by mdm_scep:
#
#   - with the real clock: CertRep FAILURE badRequest and one log line
#     saying the CA certificate has expired (the location allows a 1024-bit
#     key and no challenge, so the expiry is the only reason);
#   - under a fixed clock inside the CA's validity (libfaketime preloaded
#     into nginx): a full SUCCESS, signed by the vector's CA, enveloped
#     with DES3 for the request's signer certificate, the certificate
#     issued for the CSR's subject with a validity from the faked "now";
#   - under the fixed clock with the default policy: badAlg (1024 bits).
#
# The vector has no signer key, so the envelope cannot be opened here: the
# test checks whom it is for, and what was issued from the CA's log line and
# Redis index.

use Test::Nginx::Socket 'no_plan';
use t::MDM;

use POSIX ();
use Time::Local ();

no_shuffle();

our $Vec = t::MDM::vectors_dir() . '/scep/micromdm-scep';
our $Dir = pki_dir() . '/scep-vector';
our $Faked = '2016-06-01 12:00:00';       # inside the CA's validity
our $Subject = 'CN=com.apple.security.scep.063D7953-1338-4BF0-8F99-913382996224';
our $Txid = 'A13090761A30F66664F85D37433D2065E1112BA1';
our ($Libfaketime) = grep { -f }
    map { ("/usr/lib/$_/faketime/libfaketime.so.1") }
        ('x86_64-linux-gnu', 'aarch64-linux-gnu', 'i386-linux-gnu');
our $RealBinary = $Test::Nginx::Socket::NginxBinary;

{
    mkdir $Dir;
    t::MDM::_run('gcc', '-O1', '-o', "$Dir/scepclient", 't/scepclient.c',
                 '-lcrypto');
    # the request's signer, whom a SUCCESS must be enveloped for
    t::MDM::_run('openssl', 'pkcs7', '-inform', 'DER', '-in',
                 "$Vec/PKCSReq.der", '-print_certs', '-out',
                 "$Dir/signer.pem");
    $ENV{TEST_NGINX_SCEP_VECTOR} = $Vec;

    if ($Libfaketime) {
        # nginx, and only nginx, runs on the faked clock: from $Faked on,
        # ticking (the "@"), with the real monotonic clock for its timers.
        # Whatever binary the run uses (the ASan wrapper appends to
        # LD_PRELOAD) is started through this.
        t::MDM::_spew("$Dir/nginx-faketime", <<"EOF");
#!/bin/sh
export FAKETIME="\@$Faked" FAKETIME_DONT_FAKE_MONOTONIC=1 TZ=UTC
export LD_PRELOAD="\${LD_PRELOAD:+\$LD_PRELOAD }$Libfaketime"
exec '$RealBinary' "\$@"
EOF
        chmod 0755, "$Dir/nginx-faketime";
        $::FaketimeBroken = probe("$Dir/nginx-faketime");
    }
}

# Does this nginx start on the faked clock at all?  Under the sanitizers
# it does not: every process with libasan, libubsan and libfaketime
# preloaded (nginx, and even coreutils' date) hangs at start in a futex
# wait, before main().  Then the faked-clock blocks are skipped, with why.
sub probe {
    my ($bin) = @_;
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        POSIX::setpgid(0, 0);    # a group of its own: the ASan wrapper forks
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        { no warnings 'exec'; exec { $bin } $bin, '-V'; }
        POSIX::_exit(127);
    }
    my $deadline = time + 10;
    while (time < $deadline) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            return $? == 0 ? undef : "nginx -V on the faked clock exited $?";
        }
        select undef, undef, undef, 0.05;
    }
    # the group's processes, then what their libfaketime could not clean up
    my @group = grep { ((split ' ', t::MDM::_slurp("/proc/$_/stat") // '')[4]
                        // '') eq $pid } map { m{/(\d+)$} } glob '/proc/[0-9]*';
    kill 'KILL', -$pid;
    waitpid($pid, 0);
    unlink map { ("/dev/shm/faketime_shm_$_", "/dev/shm/sem.faketime_sem_$_") }
           @group;
    return "$RealBinary does not start with libfaketime preloaded (it "
         . 'hangs, as under the sanitizers)';
}

# --- faketime: this block's nginx runs on the faked clock
add_block_preprocessor(sub {
    my $block = shift;
    if (defined $block->faketime) {
        die "libfaketime is missing: apt-get install faketime (./build.sh "
            . "does)\n" unless $Libfaketime;
        if ($::FaketimeBroken) {
            Test::More::diag("skipped: $::FaketimeBroken");
            $block->set_value(skip_eval => '1: 1');
        }
        $Test::Nginx::Socket::NginxBinary = "$Dir/nginx-faketime";
    } else {
        $Test::Nginx::Socket::NginxBinary = $RealBinary;
    }
});

sub parse_rep {
    my ($body) = @_;
    my $dir = "$Dir/rep";
    mkdir $dir;
    t::MDM::_spew("$dir/rep.der", $body);
    my ($st, $out, $err) = t::MDM::run_cmd("$Dir/scepclient", 'rep', $dir,
        "$Vec/testca/ca.pem", "$dir/rep.der");
    Test::More::is($st, 0, "the CertRep verifies with the vector's CA alone")
        or Test::More::diag($err);
    return { map { /^([^=]+)=(.*)$/ ? ($1, $2) : () } split /\n/, $out };
}

sub common {
    my ($r) = @_;
    Test::More::is($r->{messageType}, '3', 'CertRep');
    Test::More::is($r->{transactionID}, $::Txid, 'transactionID');
    Test::More::is($r->{recipientNonce}, 'ae7fe8816cc6bedd',
                   'recipientNonce = the 8-byte senderNonce of the request');
    Test::More::is(lc $r->{digest}, 'sha1', 'answered with SHA-1 like the request');
}

sub serial_of {
    my ($pem) = @_;
    my $s = t::MDM::_run('openssl', 'x509', '-in', $pem, '-noout', '-serial');
    $s =~ /serial=0*([0-9A-F]+)/i or die "no serial in $s";
    return uc $1;
}

sub success {
    my ($block, $body) = @_;
    my $r = parse_rep($body);
    common($r);
    Test::More::is($r->{pkiStatus}, '0', 'SUCCESS');
    Test::More::ok(!defined $r->{failInfo}, 'no failInfo');
    Test::More::is($r->{envelope}, 'DES-EDE3-CBC', 'enveloped with DES3 like the request');
    (my $rcpt = $r->{recipient} // '') =~ s/serial=0*/serial=/;
    Test::More::is($rcpt,
                   '/CN=MDM SCEP SIGNER/C=US serial=' . serial_of("$::Dir/signer.pem"),
                   "for the request's signer certificate");
    Test::More::is($r->{decrypted}, '0', "(no signer key in the vector to open it)");

    # what was issued: the CA's log line and its index in Redis
    my $log = t::MDM::_slurp($Test::Nginx::Socket::ErrLogFile) // '';
    my ($serial, $sha) = $log =~ /SCEP issued serial (\d+) to "\Q$::Subject\E", transaction "\Q$::Txid\E", sha256 ([0-9a-f]{64})/;
    Test::More::ok($serial, "issued to the CSR's subject (serial "
                            . ($serial // '?') . ')') or return;
    my $na = redis('ZSCORE', 'mdm:scep:certs', $serial) // 0;
    my $want = Time::Local::timegm(0, 0, 12, 1, 5, 2016) + 365 * 86400;
    Test::More::ok(abs($na - $want) < 600,
                   "notAfter a year after the faked now ($na ~ $want): "
                   . "the clock was faked, the CA in its validity");
    Test::More::like($log, qr{^2016/06/01 }m, "nginx logged on the faked clock");
}

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"} for qw(success);
}

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => q{
        location = /scep-vector {
            mdm_scep;
            # its key is encrypted with an empty passphrase, which loads
            mdm_scep_ca $TEST_NGINX_SCEP_VECTOR/testca/ca.pem
                        $TEST_NGINX_SCEP_VECTOR/testca/ca.key;
            # what mdmclient sent in 2016: a 1024-bit key, no challenge
            mdm_scep_min_rsa_bits 1024;
            mdm_scep_challenge_required off;
        }
        location = /scep-default {
            mdm_scep;
            mdm_scep_ca $TEST_NGINX_SCEP_VECTOR/testca/ca.pem
                        $TEST_NGINX_SCEP_VECTOR/testca/ca.key;
        }
    },
);

run_tests();

__DATA__

=== TEST 1: real clock: FAILURE badRequest, one line saying the CA certificate has expired
--- redis_setup
FLUSHALL
--- raw_request eval
http_request(POST => '/scep-vector?operation=PKIOperation',
             t::MDM::_slurp("$::Vec/PKCSReq.der"))
--- error_code: 200
--- after_each eval
sub {
    my $r = ::parse_rep($_[1]);
    ::common($r);
    Test::More::is($r->{pkiStatus}, '2', 'FAILURE');
    Test::More::is($r->{failInfo}, '2', 'badRequest');
    Test::More::is(redis('ZCARD', 'mdm:scep:certs'), 0, 'nothing issued');
}
--- grep_error_log eval: qr/\[error\].*/
--- grep_error_log_out eval
[qr/^.*CertRep FAILURE \(badRequest\): the CA certificate has expired, transaction "A13090761A30F66664F85D37433D2065E1112BA1", subject "CN=com\.apple\.security\.scep\.063D7953-1338-4BF0-8F99-913382996224".*\n\z/]



=== TEST 2: the clock fixed at 2016-06-01 (libfaketime in nginx): a full SUCCESS for the CSR's subject
--- faketime
--- redis_setup
FLUSHALL
--- raw_request eval
http_request(POST => '/scep-vector?operation=PKIOperation',
             t::MDM::_slurp("$::Vec/PKCSReq.der"))
--- error_code: 200
--- after_each eval
\&success
--- no_error_log
[error]



=== TEST 3: the fixed clock and the default policy: FAILURE badAlg for the 1024-bit key
--- faketime
--- raw_request eval
http_request(POST => '/scep-default?operation=PKIOperation',
             t::MDM::_slurp("$::Vec/PKCSReq.der"))
--- error_code: 200
--- after_each eval
sub {
    my $r = ::parse_rep($_[1]);
    ::common($r);
    Test::More::is($r->{pkiStatus}, '2', 'FAILURE');
    Test::More::is($r->{failInfo}, '0', 'badAlg');
}
--- grep_error_log eval: qr/\[error\].*/
--- grep_error_log_out eval
[qr/^.*CertRep FAILURE \(badAlg\): the device key is not RSA of mdm_scep_min_rsa_bits or more, nor EC, transaction "A13090761A30F66664F85D37433D2065E1112BA1".*\n\z/]
