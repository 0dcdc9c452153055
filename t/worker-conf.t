# mdm-worker's settings: the file (-c) first, then every --name value flag,
# wherever the flag stands on the command line (a packaged unit puts -c
# last, an admin adds flags before it).

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep);

my $bin = $ENV{MDM_WORKER} || 'workers/mdm-worker';
my $dir = tempdir(CLEANUP => 1);

open my $fh, '>', "$dir/w.conf" or die $!;
print $fh "apns_url = https://from-the-file.example\nstop_timeout = 1\n";
close $fh;

sub started_with (@) {
    my $pid = open my $out, '-|';
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDERR, '>&', \*STDOUT;
        exec $bin, @_, '--redis', '127.0.0.1:1' or exit 127;
    }
    my $line = <$out>;
    kill 'TERM', $pid;
    close $out;
    return $line // '';
}

like(started_with('--apns_url', 'https://from-a-flag.example', '-c', "$dir/w.conf"),
     qr{apns https://from-a-flag\.example}, 'a flag before -c wins over the file');
like(started_with('-c', "$dir/w.conf", '--apns_url', 'https://from-a-flag.example'),
     qr{apns https://from-a-flag\.example}, 'a flag after -c wins over the file');
like(started_with('--config', "$dir/w.conf"),
     qr{apns https://from-the-file\.example}, 'the file sets what no flag sets');

done_testing();
