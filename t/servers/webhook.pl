#!/usr/bin/perl
# A webhook receiver for tests: plain HTTP/1.1 on 127.0.0.1.
#
#   webhook.pl --port N --log FILE [--rules FILE] [--pid FILE]
#
# One process, one IO::Select loop, non-blocking sockets, any number of
# connections, keep-alive (HTTP/1.1 default; "Connection: close" and
# HTTP/1.0 close after the answer), Content-Length and chunked request
# bodies, "Expect: 100-continue" answered at once.
#
# Every request is appended to --log as one JSON line (flushed at once):
#   {"time": 1700000000.123, "conn": 1, "method": "POST",
#    "path": "/hook?x=1" (the request target as sent), "version": "HTTP/1.1",
#    "headers": {"content-type": "...", ...} (lowercase; repeats joined
#                ", "),
#    "body": "<text>" (or "body_b64" when the body is not UTF-8),
#    "status": 200 (what was answered; null with "closed": true when the
#    rules said to drop the connection instead)}
#
# Answers come from --rules, a JSON file re-read whenever it changes
# (inode, size or mtime); missing file = 200 for everything:
#   {"status": 200,                    # default 200
#    "body": "...",                    # response body (default "ok\n" /
#                                      # the status text)
#    "headers": {"x-foo": "bar"},      # extra response headers
#    "delay_ms": 0,                    # answer after this long
#    "close": false,                   # true: drop the connection unanswered
#    "paths": {"/hook": {...rule...}}, # per path (query ignored), beats the
#                                      # top level
#    "sequence": [500, {"status": 503}, 200]}
#                                      # the first requests after the rules
#                                      # changed get these, in order; then
#                                      # the rules above apply
# SIGTERM/SIGINT: exit 0 (the pid file is removed).

use strict;
use warnings;

use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use Getopt::Long qw(GetOptions);
use IO::Handle;
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(time);

my %opt;
GetOptions(\%opt, 'port=i', 'log=s', 'rules=s', 'pid=s')
    or die "usage: $0 --port N --log F [--rules F] [--pid F]\n";
for (qw(port log)) {
    die "$0: --$_ is required\n" unless defined $opt{$_};
}

$| = 1;
STDERR->autoflush(1);

my $JSON = JSON::PP->new->utf8->canonical;

my %StatusText = (
    100 => 'Continue', 200 => 'OK', 201 => 'Created', 202 => 'Accepted',
    204 => 'No Content', 301 => 'Moved Permanently', 302 => 'Found',
    400 => 'Bad Request', 401 => 'Unauthorized', 403 => 'Forbidden',
    404 => 'Not Found', 405 => 'Method Not Allowed', 408 => 'Request Timeout',
    413 => 'Payload Too Large', 429 => 'Too Many Requests',
    500 => 'Internal Server Error', 502 => 'Bad Gateway',
    503 => 'Service Unavailable', 504 => 'Gateway Timeout',
);

open my $log, '>>:raw', $opt{log} or die "$0: open $opt{log}: $!\n";
$log->autoflush(1);

my $listen = IO::Socket::INET->new(
    LocalAddr => '127.0.0.1', LocalPort => $opt{port}, Proto => 'tcp',
    Listen => 1024, ReuseAddr => 1,
) or die "$0: listen 127.0.0.1:$opt{port}: $!\n";
$listen->blocking(0);

if ($opt{pid}) {
    open my $fh, '>', $opt{pid} or die "$0: write $opt{pid}: $!\n";
    print {$fh} "$$\n";
    close $fh;
}

my $running = 1;
$SIG{TERM} = $SIG{INT} = sub { $running = 0 };
$SIG{PIPE} = 'IGNORE';

print "listening 127.0.0.1:$opt{port}\n";

my %Conns;       # fileno => conn
my $ConnSeq = 0;
my @Delayed;     # [due, conn, response bytes, close after]

my ($Rules, $RulesSig, $SeqPos) = ({}, '', 0);

sub note { print STDERR sprintf("%.3f %s\n", time, join '', @_) }

sub load_rules {
    my $file = $opt{rules};
    my @st = defined $file ? Time::HiRes::stat($file) : ();
    my $sig = @st ? join(':', @st[1, 7, 9]) : 'none';
    return if $sig eq $RulesSig;
    $RulesSig = $sig;
    $SeqPos = 0;
    $Rules = {};
    return unless @st;
    open my $fh, '<:raw', $file or return;
    local $/;
    my $text = <$fh>;
    close $fh;
    my $r = eval { $JSON->decode($text) };
    if (ref $r eq 'HASH') {
        $Rules = $r;
    } else {
        note("rules: cannot parse $file: ", $@ || 'not an object');
        $RulesSig = '';
    }
}

sub rule_for {
    my ($path) = @_;
    if (ref $Rules->{sequence} eq 'ARRAY' && $SeqPos < @{ $Rules->{sequence} }) {
        my $r = $Rules->{sequence}[ $SeqPos++ ];
        return ref $r eq 'HASH' ? $r : { status => $r };
    }
    (my $p = $path) =~ s/\?.*//s;
    if (ref $Rules->{paths} eq 'HASH' && exists $Rules->{paths}{$p}) {
        my $r = $Rules->{paths}{$p};
        return ref $r eq 'HASH' ? $r : { status => $r };
    }
    return $Rules;
}

sub close_conn {
    my ($c, $why) = @_;
    return if $c->{closed};
    $c->{closed} = 1;
    delete $Conns{ $c->{fd} };
    close $c->{sock};
}

sub flush_out {
    my ($c) = @_;
    while (length $c->{out}) {
        my $n = syswrite($c->{sock}, $c->{out}, 65536);
        if (defined $n) { substr($c->{out}, 0, $n, ''); next }
        return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
        close_conn($c, "write error: $!");
        return;
    }
    close_conn($c, 'done') if $c->{close_when_flushed} && !@{ $c->{waiting} };
}

sub write_log {
    my ($entry) = @_;
    syswrite($log, $JSON->encode($entry) . "\n");
}

# Parses as many complete requests as the buffer holds.
sub parse_requests {
    my ($c) = @_;
    while (!$c->{closed} && !$c->{close_when_flushed}) {
        if (!$c->{req}) {
            $c->{in} =~ s/\A(?:\r?\n)+//;
            my $end = index($c->{in}, "\r\n\r\n");
            my $sep = 4;
            if ($end < 0) {
                $end = index($c->{in}, "\n\n");
                $sep = 2;
            }
            if ($end < 0) {
                if (length $c->{in} > 1_000_000) {
                    bad_request($c);
                }
                return;
            }
            my $head = substr($c->{in}, 0, $end);
            substr($c->{in}, 0, $end + $sep, '');
            my ($line, @lines) = split /\r?\n/, $head;
            my ($method, $target, $version) =
                ($line // '') =~ m{^(\S+)\s+(\S+)\s+(HTTP/\d\.\d)\s*$};
            if (!$method) { bad_request($c); return }
            my %h;
            for my $l (@lines) {
                my ($k, $v) = $l =~ /^([^:]+):\s*(.*?)\s*$/ or next;
                $k = lc $k;
                $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
            }
            my $req = { method => $method, path => $target,
                        version => $version, headers => \%h, body => '' };
            if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
                $req->{chunked} = 1;
            } else {
                my $len = $h{'content-length'} // 0;
                if ($len !~ /^\d+$/) { bad_request($c); return }
                $req->{need} = $len;
            }
            $c->{req} = $req;
            if (($h{expect} // '') =~ /100-continue/i) {
                $c->{out} .= "HTTP/1.1 100 Continue\r\n\r\n";
            }
        }
        my $req = $c->{req};
        if ($req->{chunked}) {
            while (1) {
                if ($req->{trailer}) {
                    my $e = index($c->{in}, "\r\n");
                    return if $e < 0;
                    my $l = substr($c->{in}, 0, $e + 2, '');
                    next if $e > 0;
                    delete $req->{trailer};
                    $req->{complete} = 1;
                    last;
                }
                my $e = index($c->{in}, "\r\n");
                return if $e < 0;
                my ($size) = substr($c->{in}, 0, $e) =~ /^([0-9a-fA-F]+)/;
                if (!defined $size) { bad_request($c); return }
                $size = hex $size;
                if ($size == 0) {
                    substr($c->{in}, 0, $e + 2, '');
                    $req->{trailer} = 1;
                    next;
                }
                return if length($c->{in}) < $e + 2 + $size + 2;
                $req->{body} .= substr($c->{in}, $e + 2, $size);
                substr($c->{in}, 0, $e + 2 + $size + 2, '');
            }
        } else {
            return if length($c->{in}) < $req->{need};
            $req->{body} = substr($c->{in}, 0, $req->{need}, '');
        }
        delete $c->{req};
        handle_request($c, $req);
    }
}

sub bad_request {
    my ($c) = @_;
    $c->{out} .= "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
               . "Connection: close\r\n\r\n";
    $c->{close_when_flushed} = 1;
}

sub handle_request {
    my ($c, $req) = @_;
    load_rules();
    my $rule = rule_for($req->{path});
    my %entry = (
        time => 0 + sprintf('%.6f', time), conn => $c->{id},
        method => $req->{method}, path => $req->{path},
        version => $req->{version}, headers => $req->{headers},
    );
    my $copy = $req->{body};
    if (utf8::decode($copy)) { $entry{body} = $copy }
    else { $entry{body_b64} = encode_base64($req->{body}, '') }

    if ($rule->{close}) {
        $entry{status} = undef;
        $entry{closed} = JSON::PP::true;
        write_log(\%entry);
        $c->{close_when_flushed} = 1;    # earlier answers still go out
        flush_out($c);
        return;
    }

    my $status = 0 + ($rule->{status} // 200);
    $entry{status} = $status;
    write_log(\%entry);

    my $text = $StatusText{$status} // 'Status';
    my $body = $rule->{body} // ($status == 200 ? "ok\n" : "$text\n");
    utf8::encode($body) if utf8::is_utf8($body);
    $body = '' if $status == 204 || $status == 304 || $status < 200;
    my $keep = $req->{version} eq 'HTTP/1.1'
        ? (($req->{headers}{connection} // '') !~ /\bclose\b/i)
        : (($req->{headers}{connection} // '') =~ /keep-alive/i);
    my $resp = "HTTP/1.1 $status $text\r\n"
             . "Content-Type: text/plain\r\n"
             . "Content-Length: " . length($body) . "\r\n";
    if (ref $rule->{headers} eq 'HASH') {
        for my $k (sort keys %{ $rule->{headers} }) {
            $resp .= "$k: $rule->{headers}{$k}\r\n";
        }
    }
    $resp .= "Connection: close\r\n" unless $keep;
    $resp .= "\r\n";
    $resp .= $body unless $req->{method} eq 'HEAD';

    my $delay = $rule->{delay_ms};
    if ($delay) {
        # Answers keep their order: later requests on this connection wait
        # behind this one.
        my $slot = [ time + $delay / 1000, $c, $resp, !$keep ];
        push @{ $c->{waiting} }, $slot;
        push @Delayed, $slot;
        @Delayed = sort { $a->[0] <=> $b->[0] } @Delayed;
        $c->{close_when_flushed} = 1 unless $keep;
        return;
    }
    if (@{ $c->{waiting} }) {
        push @{ $c->{waiting} }, [ 0, $c, $resp, !$keep ];
    } else {
        $c->{out} .= $resp;
    }
    $c->{close_when_flushed} = 1 unless $keep;
}

# Moves answers whose time has come, in order, to the output buffer.
sub release_waiting {
    my ($c) = @_;
    my $now = time;
    while (@{ $c->{waiting} } && $c->{waiting}[0][0] <= $now) {
        my $slot = shift @{ $c->{waiting} };
        $c->{out} .= $slot->[2];
    }
}

while ($running) {
    my $rsel = IO::Select->new($listen);
    my $wsel = IO::Select->new;
    for my $c (values %Conns) {
        $rsel->add($c->{sock});
        $wsel->add($c->{sock}) if length $c->{out};
    }
    my $timeout = 1;
    @Delayed = grep { !$_->[1]{closed} && $_->[0] > 0 } @Delayed;
    if (@Delayed) {
        my $t = $Delayed[0][0] - time;
        $timeout = $t < 0 ? 0 : $t < $timeout ? $t : $timeout;
    }
    my ($r, $w) = IO::Select->select($rsel, $wsel, undef, $timeout);
    last unless $running;

    for my $fh (@{ $r || [] }) {
        if ($fh == $listen) {
            while (my $sock = $listen->accept) {
                $sock->blocking(0);
                my $c = { sock => $sock, fd => fileno $sock, id => ++$ConnSeq,
                          in => '', out => '', waiting => [] };
                $Conns{ $c->{fd} } = $c;
            }
            next;
        }
        my $c = $Conns{ fileno $fh } or next;
        my $n = sysread($c->{sock}, my $buf, 65536);
        if (!defined $n) {
            next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            close_conn($c, "read error: $!");
            next;
        }
        if ($n == 0) {
            # Half-closed clients still get their pending answers.
            if (@{ $c->{waiting} } || length $c->{out}) {
                $c->{close_when_flushed} = 1;
                $c->{eof} = 1;
            } else {
                close_conn($c, 'peer closed');
            }
            next;
        }
        next if $c->{eof};
        $c->{in} .= $buf;
        parse_requests($c);
        flush_out($c) unless $c->{closed};
    }
    for my $fh (@{ $w || [] }) {
        my $c = $Conns{ fileno $fh } or next;
        flush_out($c);
    }
    my $now = time;
    while (@Delayed && $Delayed[0][0] <= $now) {
        my $slot = shift @Delayed;
        my $c = $slot->[1];
        next if $c->{closed};
        $slot->[0] = 0;    # due
        release_waiting($c);
        flush_out($c);
    }
}

unlink $opt{pid} if $opt{pid};
exit 0;
