package precompute

// Floor returns the last epoch boundary at or before ts: the largest
// multiple of epoch (counted from the Unix epoch) that is <= ts.
func Floor(ts, epoch int64) int64 {
	b := ts / epoch * epoch
	if b > ts { // negative ts: division truncates toward zero
		b -= epoch
	}
	return b
}

// Ceil returns the first epoch boundary at or after ts.
func Ceil(ts, epoch int64) int64 {
	b := Floor(ts, epoch)
	if b < ts {
		b += epoch
	}
	return b
}
