/* parleyd — placeholder main, replaced during integration */
int main(void)
{
	return 0;
}
