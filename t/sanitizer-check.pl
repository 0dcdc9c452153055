#!/usr/bin/perl
# sanitizer-check.pl DIR: fails (exit 1) on any sanitizer report in DIR that
# concerns ngx_mdm.  nginx does not free its per-process connection and
# event arrays at exit; LeakSanitizer reports those as indirect leaks with
# nothing but nginx's own frames, and they are the one thing let through.
# Everything else fails: ASan errors, UBSan runtime errors, direct leaks,
# and any leak whose stack shows the module or a library it drives.
use strict;
use warnings;

my $dir = shift or die "usage: $0 DIR\n";
my $bad = 0;

# failed-start.PID: nginx refused its configuration (set aside by the
# wrapper in build.sh); only its leak report is expected there
for my $file (sort glob "$dir/*") {
    if ($file =~ m{/failed-start\.\d+$}) {
        open my $fh, '<', $file or die "$file: $!\n";
        my $text = do { local $/; <$fh> };
        next if $text !~ /ERROR: AddressSanitizer|runtime error/
                && $text !~ /ngx_http_mdm|hiredis|libplist|libcrypto|libssl/;
    }

    open my $fh, '<', $file or die "$file: $!\n";
    my $text = do { local $/; <$fh> };

    my @findings;
    push @findings, $1 while $text =~ /(ERROR: AddressSanitizer: [^\n]*)/g;
    push @findings, $1 while $text =~ /(runtime error: [^\n]*)/g;

    # leak records are separated by blank lines
    for my $rec (split /\n\s*\n/, $text) {
        next unless $rec =~ /^(Direct|Indirect) leak of/m;
        if ($rec =~ /^Direct leak/m
            || $rec =~ /ngx_http_mdm|hiredis|libplist|libcrypto|libssl/)
        {
            push @findings, (split /\n/, $rec)[0];
        }
    }

    next unless @findings;
    $bad = 1;
    print "== $file\n$text\n";
}

exit $bad;
