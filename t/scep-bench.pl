#!/usr/bin/perl
# scep-bench.pl: signed Idle latency while a burst of SCEP enrollments runs.
#
#   perl t/scep-bench.pl PORT SCEP_PATH REQ.der IDLE.plist IDLE.sig N CONC
#
# Sends N copies of the PKCSReq in REQ.der to SCEP_PATH, CONC at a time,
# while one keep-alive connection sends the signed Idle (IDLE.plist with
# the base64 Mdm-Signature in IDLE.sig) to /mdm over and over; prints the
# burst's duration (ms per issuance) and Idle p50/p99/max, and the same
# Idle figures with no burst first. Not run by prove: numbers for the
# README's SCEP section (a 2-core machine shared with other work is noisy).
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time);

my ($port, $path, $reqf, $idlef, $sigf, $n, $conc) = @ARGV;
die "usage\n" unless $conc;
sub slurp { open my $f, '<:raw', $_[0] or die "$_[0]: $!"; local $/; <$f> }
my ($req, $idle, $sig) = (slurp($reqf), slurp($idlef), slurp($sigf));
$sig =~ s/\s+//g;

my $idle_req = "PUT /mdm HTTP/1.1\r\nHost: x\r\n"
    . "Mdm-Signature: $sig\r\n"
    . "Content-Length: " . length($idle) . "\r\n\r\n$idle";
my $scep_req = "POST $path?operation=PKIOperation HTTP/1.1\r\nHost: x\r\n"
    . "Connection: close\r\nContent-Length: " . length($req) . "\r\n\r\n$req";

sub idle_loop {
    my ($secs, $until_file) = @_;
    my $s = IO::Socket::INET->new("127.0.0.1:$port") or die $!;
    my @lat;
    my $end = time + $secs;
    while (time < $end && !($until_file && -e $until_file)) {
        my $t = time;
        print {$s} $idle_req;
        my $buf = '';
        while ($buf !~ /\r\n\r\n/ || length($buf) < index($buf, "\r\n\r\n") + 4
               + ($buf =~ /Content-Length: (\d+)/i ? $1 : 0)) {
            next if sysread($s, $buf, 65536, length $buf);
            # keepalive_requests reached: a new connection, the same request
            $s = IO::Socket::INET->new("127.0.0.1:$port") or die $!;
            print {$s} $idle_req;
            ($buf, $t) = ('', time);
        }
        die "idle: $buf" unless $buf =~ m{^HTTP/1.1 200};
        push @lat, (time - $t) * 1000;
    }
    @lat = sort { $a <=> $b } @lat;
    return sprintf "n=%d p50=%.2fms p99=%.2fms max=%.2fms", scalar @lat,
        $lat[@lat / 2], $lat[int(@lat * 0.99)], $lat[-1];
}

print "Idle alone:         ", idle_loop(3), "\n";

my $done = "/tmp/scep-bench.$$";
unlink $done;
my $pid = fork;
if ($pid == 0) {
    my $t0 = time;
    my ($sent, $ok, %c) = (0, 0);
    my $sel = IO::Select->new;
    while ($ok + keys(%c) < $n || keys %c) {
        while (keys(%c) < $conc && $sent < $n) {
            my $s = IO::Socket::INET->new("127.0.0.1:$port") or die $!;
            print {$s} $scep_req;
            $c{fileno $s} = [$s, ''];
            $sel->add($s);
            $sent++;
        }
        for my $s ($sel->can_read(5)) {
            my $e = $c{fileno $s};
            if (!sysread($s, $e->[1], 65536, length $e->[1])) {
                $ok++ if $e->[1] =~ m{^HTTP/1.1 200};
                $sel->remove($s);
                delete $c{fileno $s};
                close $s;
            }
        }
        last if $sent >= $n && !keys %c;
    }
    my $ms = (time - $t0) * 1000;
    printf "burst: %d enrollments (%d answered 200) in %.0f ms: %.2f ms "
        . "per issuance, %.0f/s\n", $n, $ok, $ms, $ms / $n, $n / $ms * 1000;
    open my $f, '>', $done; close $f;
    exit 0;
}
print "Idle during burst:  ", idle_loop(300, $done), "\n";
waitpid $pid, 0;
unlink $done;
