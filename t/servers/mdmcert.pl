#!/usr/bin/perl
# A stand-in for mdmcert.download's sign-request API, for tests
# (protocol-ext.md C5): plain HTTP/1.1 on 127.0.0.1, one request at a time.
#
#   mdmcert.pl --port N --log FILE --rules FILE --pid FILE
#              --vendor-cert F --vendor-key F --chain F --outbox DIR
#              --api-key KEY
#
# POST /api/v1/signrequest, Content-Type application/json, a JSON object
# with exactly the string keys csr (base64 of a PEM CSR), email (an
# address), key (the API key given with --api-key) and encrypt (base64 of a
# PEM certificate). Anything else is answered 400 {"result": "failure",
# "reason": "..."} (404 for another path, 405 for another method).
#
# A good request is done as the service does it: the CSR's DER is signed
# with the vendor key (SHA-256), the plist {PushCertRequestCSR,
# PushCertCertificateChain, PushCertSignature} is base64-encoded, that file
# is CMS-encrypted to the "encrypt" certificate and its hex "emailed":
# written to DIR/N.hex (N counts from 1). The answer is 200
# {"result": "success"}.
#
# Every request is one JSON line in --log: method, path, headers
# (lowercase names), body, status, reason. --rules (JSON, re-read on each
# request; absent = none) may say {"status": 503} to answer that instead
# (body {"result": "failure", "reason": "rules"}).
# SIGTERM: exit 0.

use strict;
use warnings;

use File::Temp qw(tempdir);
use Getopt::Long qw(GetOptions);
use IO::Handle;
use IO::Socket::INET;
use JSON::PP ();
use MIME::Base64 qw(decode_base64 encode_base64);

my %opt;
GetOptions(\%opt, 'port=i', 'log=s', 'rules=s', 'pid=s', 'vendor-cert=s',
           'vendor-key=s', 'chain=s', 'outbox=s', 'api-key=s')
    or die "usage: see the top of $0\n";
for (qw(port log vendor-cert vendor-key chain outbox api-key)) {
    die "$0: --$_ is required\n" unless defined $opt{$_};
}

$| = 1;
my $JSON = JSON::PP->new->utf8->canonical;
my $Tmp = tempdir('mdmcert-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $Emails = 0;

open my $log, '>>:raw', $opt{log} or die "$0: $opt{log}: $!\n";
$log->autoflush(1);

my $listen = IO::Socket::INET->new(
    LocalAddr => '127.0.0.1', LocalPort => $opt{port}, Proto => 'tcp',
    Listen => 16, ReuseAddr => 1,
) or die "$0: listen 127.0.0.1:$opt{port}: $!\n";

if ($opt{pid}) {
    open my $fh, '>', $opt{pid} or die "$0: $opt{pid}: $!\n";
    print {$fh} "$$\n";
    close $fh;
}
$SIG{TERM} = $SIG{INT} = sub { unlink $opt{pid} if $opt{pid}; exit 0 };
$SIG{PIPE} = 'IGNORE';
print "listening 127.0.0.1:$opt{port}\n";

sub slurp {
    my ($f) = @_;
    open my $fh, '<:raw', $f or return undef;
    local $/;
    my $d = <$fh>;
    return $d;
}

sub spew {
    my ($f, $d) = @_;
    open my $fh, '>:raw', $f or die "$f: $!\n";
    print {$fh} $d;
    close $fh;
}

sub run {
    my @cmd = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', "$Tmp/err";
        exec @cmd or exit 127;
    }
    waitpid $pid, 0;
    return $? == 0;
}

# the service's work: vendor-sign the CSR, encrypt the result to the
# exchange certificate, "email" its hex
sub sign_and_mail {
    my ($csr_pem, $cert_pem) = @_;
    spew("$Tmp/csr.pem", $csr_pem);
    spew("$Tmp/xchg.pem", $cert_pem);
    run('openssl', 'req', '-in', "$Tmp/csr.pem", '-outform', 'DER',
        '-out', "$Tmp/csr.der") or return 'the CSR does not parse';
    run('openssl', 'x509', '-in', "$Tmp/xchg.pem", '-noout')
        or return 'the encrypt certificate does not parse';
    run('openssl', 'dgst', '-sha256', '-sign', $opt{'vendor-key'},
        '-out', "$Tmp/sig", "$Tmp/csr.der") or return 'signing failed';
    my $plist = <<"EOF";
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
<key>PushCertRequestCSR</key>
<string>@{[ encode_base64(slurp("$Tmp/csr.der"), '') ]}</string>
<key>PushCertCertificateChain</key>
<string>@{[ slurp($opt{chain}) ]}</string>
<key>PushCertSignature</key>
<string>@{[ encode_base64(slurp("$Tmp/sig"), '') ]}</string>
</dict>
</plist>
EOF
    spew("$Tmp/req", encode_base64($plist, ''));
    run('openssl', 'cms', '-encrypt', '-binary', '-aes-256-cbc',
        '-in', "$Tmp/req", '-outform', 'DER', '-out', "$Tmp/p7",
        "$Tmp/xchg.pem") or return 'encrypting failed';
    $Emails++;
    spew("$opt{outbox}/$Emails.hex", unpack('H*', slurp("$Tmp/p7")) . "\n");
    return undef;
}

# the reason a request is refused, or undef
sub check {
    my ($m, $path, $h, $body) = @_;
    return (405, 'POST only') if $m ne 'POST';
    return (404, 'no such endpoint') if $path ne '/api/v1/signrequest';
    return (400, 'Content-Type is not application/json')
        if ($h->{'content-type'} // '') !~ m{^application/json\s*(;|$)}i;
    my $j = eval { JSON::PP->new->utf8->decode($body) };
    return (400, 'body is not JSON') unless ref $j eq 'HASH';
    my @keys = sort keys %$j;
    return (400, "keys are @keys, want csr email encrypt key")
        unless "@keys" eq 'csr email encrypt key';
    for (@keys) {
        return (400, "$_ is not a string") if ref $j->{$_} || !defined $j->{$_};
    }
    return (400, 'email is not an address') unless $j->{email} =~ /^[^@\s]+@[^@\s]+$/;
    return (403, 'unknown API key') unless $j->{key} eq $opt{'api-key'};
    for my $k (qw(csr encrypt)) {
        return (400, "$k is not base64")
            unless $j->{$k} =~ m{^[A-Za-z0-9+/]+={0,2}$} && length($j->{$k}) % 4 == 0;
    }
    my $csr = decode_base64($j->{csr});
    my $cert = decode_base64($j->{encrypt});
    return (400, 'csr is not a PEM CSR')
        unless $csr =~ /^-----BEGIN CERTIFICATE REQUEST-----\n[A-Za-z0-9+\/=\n]+-----END CERTIFICATE REQUEST-----\n?$/;
    return (400, 'encrypt is not a PEM certificate')
        unless $cert =~ /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+\/=\n]+-----END CERTIFICATE-----\n?$/;
    my $err = sign_and_mail($csr, $cert);
    return (400, $err) if $err;
    return (200, undef);
}

while (1) {
    my $c = $listen->accept or next;
    $c->autoflush(1);
    my $head = '';
    while ($head !~ /\r?\n\r?\n/) {
        my $n = sysread($c, my $buf, 4096);
        last unless $n;
        $head .= $buf;
        last if length $head > 65536;
    }
    my ($hdr, $body) = split /\r?\n\r?\n/, $head, 2;
    $body //= '';
    my ($line, @lines) = split /\r?\n/, $hdr // '';
    my ($m, $path) = ($line // '') =~ /^(\S+)\s+(\S+)\s+HTTP/;
    if (!defined $m) {          # a connection that sent no request: the
        close $c;               # test's "is it listening" probe
        next;
    }
    my %h;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
        $h{lc $k} = $v;
    }
    my $len = $h{'content-length'} // 0;
    $len = 0 unless $len =~ /^\d+$/ && $len < 1_000_000;
    while (length $body < $len) {
        my $n = sysread($c, my $buf, $len - length $body);
        last unless $n;
        $body .= $buf;
    }

    my ($status, $reason);
    my $rules = -f ($opt{rules} // '') ? eval { $JSON->decode(slurp($opt{rules})) } : undef;
    if (ref $rules eq 'HASH' && $rules->{status}) {
        ($status, $reason) = ($rules->{status}, 'rules');
    } else {
        ($status, $reason) = check($m // '', $path // '', \%h, $body);
    }
    # logged before the answer: a client that has its answer finds its
    # request in the log
    syswrite($log, $JSON->encode({ method => $m, path => $path, headers => \%h,
        body => $body, status => $status, reason => $reason }) . "\n");
    my $answer = $JSON->encode(defined $reason
        ? { result => 'failure', reason => $reason } : { result => 'success' });
    print {$c} "HTTP/1.1 $status X\r\nContent-Type: application/json\r\n"
        . "Content-Length: " . length($answer) . "\r\nConnection: close\r\n\r\n"
        . $answer;
    close $c;
}
